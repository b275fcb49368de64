/* System calls that block for the whole of a send, each run on a thread of its own, the result handed
 * back to JS through a thread-safe function (src/sys/blocking-calls.ts, used by src/sys/send-ioctl.ts):
 *
 *   ioctl(fd, request, args: Uint8Array, keepAlive: Uint8Array) → Promise<[ret, errno]>
 *       BTRFS_IOC_SEND blocks until the kernel has written the whole stream into its pipe.
 *   copyPipe(in, out, chunk, outPipeSize, progress: Float64Array | null, paceMaxMicros)
 *       → Promise<[total, errno, syscall, transfers]>
 *       moves a pipe's contents to an fd with splice(2) until EOF (no copy through user space, as
 *       btrfs-progs' reader thread), with read/write where splice is refused (EINVAL: e.g. an O_APPEND
 *       file); EAGAIN on a non-blocking output waits in poll(2). `progress[0]` holds the bytes so far;
 *       `transfers` counts the splice/read calls that moved data. With paceMaxMicros > 0 the splice
 *       loop paces itself (pace_after, below; the read/write loop does not).
 *
 * Why: the worker_threads this replaces cost ~10 MiB of resident memory each (a whole V8 isolate, two
 * per send) and ~25 ms to start. errno is read in C on the thread that made the call, so it is the
 * call's own (koffi's async calls could not promise that). Not libuv's pool: these calls last as long as
 * the send, and with four sends into Node streams at once, four ioctls would hold all four pool threads
 * while the reads that drain their pipes waited behind them.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi-exports.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct call {
  napi_threadsafe_function done;
  napi_deferred deferred;
  void (*run)(struct call *);
  napi_ref keep[2];        /* Buffers the call uses, alive until it settles */
  /* ioctl */
  int fd;
  unsigned long request;
  void *args;
  /* copyPipe */
  int in, out;
  size_t chunk;
  int out_pipe_size;
  int64_t pace_max_ns;
  double *progress;
  int64_t transfers;
  /* results */
  int64_t ret;             /* ioctl's return value, or bytes copied */
  int error;
  const char *syscall;
};

static void run_ioctl(struct call *c) {
  int ret = ioctl(c->fd, c->request, c->args);
  c->ret = ret;
  c->error = ret < 0 ? errno : 0;
}

static void wait_for(int fd, short events) {
  struct pollfd p = { .fd = fd, .events = events };
  poll(&p, 1, 1000);
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/*
 * Pacing the reader of the kernel's pipe. Every write the kernel makes into an *empty* pipe wakes the
 * reader, and a reader that takes the data at once finds the pipe empty every time: the send ioctl then
 * pays a wake-up for nearly every command (~120k splices for the 453 MiB compressed lab stream; its
 * system time 5.8 s, progs' 5.7 s). A reader that, having emptied the pipe, sleeps until about a quarter
 * of it has refilled (at the rate it has been filling) is woken by nobody: 14k splices, 4.0 s of system
 * time, the wall time ~10 % shorter (docs/benchmarks.md). It does not sleep when a quarter of the pipe is
 * already waiting (the output held it up: a slow consumer must not wait for a nap too; a writer's few bytes
 * that arrive between the transfer and the check do not count), nor when it found the pipe half full or
 * more (the kernel may be about to block on it); a nap lasts at most pace_max_ns, so the kernel never
 * waits long should the rate jump.
 */
struct pace {
  int64_t max_ns;
  int pipe_size;
  double bytes_per_ns;     /* moving average of the rate the pipe fills at */
  int64_t last;            /* when the previous transfer ended */
};

static void pace_after(struct pace *p, int in, ssize_t moved) {
  int64_t t = now_ns();
  double sample = (double)moved / (double)(t - p->last + 1);
  p->bytes_per_ns = p->bytes_per_ns == 0 ? sample : 0.75 * p->bytes_per_ns + 0.25 * sample;
  p->last = t;
  int left = 0;
  if (moved >= p->pipe_size / 2 || ioctl(in, FIONREAD, &left) != 0) return;
  int target = p->pipe_size / 4;
  if (left >= target) return;
  int64_t nap = (int64_t)((double)(target - left) / p->bytes_per_ns);
  if (nap > p->max_ns) nap = p->max_ns;
  struct timespec ts = { (time_t)(nap / 1000000000), (long)(nap % 1000000000) };
  nanosleep(&ts, NULL);
}

static void run_copy(struct call *c) {
  if (c->out_pipe_size > 0) fcntl(c->out, F_SETPIPE_SZ, c->out_pipe_size); /* only helps if it is a pipe */
  struct pace pace = { .max_ns = c->pace_max_ns, .pipe_size = fcntl(c->in, F_GETPIPE_SZ), .last = now_ns() };
  if (pace.pipe_size <= 0) pace.max_ns = 0;
  /* A paced copy takes all the pipe holds at once, whatever `chunk` says. */
  size_t splice_len = pace.max_ns > 0 && (size_t)pace.pipe_size > c->chunk ? (size_t)pace.pipe_size : c->chunk;
  int64_t total = 0;
  uint8_t *buf = NULL;
  int use_splice = 1;
  for (;;) {
    if (use_splice) {
      ssize_t n = splice(c->in, NULL, c->out, NULL, splice_len, SPLICE_F_MORE);
      if (n > 0) {
        total += n;
        c->transfers++;
        if (c->progress) c->progress[0] = (double)total;
        if (pace.max_ns > 0) pace_after(&pace, c->in, n);
        continue;
      }
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        /* With a non-blocking output, pipe-to-pipe splice also says EAGAIN when the input is empty. */
        wait_for(c->in, POLLIN);
        wait_for(c->out, POLLOUT);
        continue;
      }
      if (errno == EINVAL) {
        use_splice = 0;
        buf = malloc(c->chunk);
        if (buf == NULL) { c->error = ENOMEM; c->syscall = "malloc"; break; }
        continue;
      }
      c->error = errno;
      c->syscall = "splice";
      break;
    }
    ssize_t n = read(c->in, buf, c->chunk);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      c->error = errno;
      c->syscall = "read";
      break;
    }
    ssize_t done = 0;
    while (done < n) {
      ssize_t m = write(c->out, buf + done, (size_t)(n - done));
      if (m >= 0) { done += m; continue; }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { wait_for(c->out, POLLOUT); continue; }
      c->error = errno;
      c->syscall = "write";
      break;
    }
    if (c->error != 0) break;
    total += n;
    c->transfers++;
    if (c->progress) c->progress[0] = (double)total;
  }
  free(buf);
  c->ret = total;
}

/* On the main thread: resolve the promise with [ret, errno, syscall]. env is NULL when Node is exiting. */
static void settle(napi_env env, napi_value js_callback, void *context, void *data) {
  (void)js_callback;
  (void)context;
  struct call *c = data;
  if (env != NULL) {
    napi_value result, item;
    napi_create_array_with_length(env, 4, &result);
    napi_create_double(env, (double)c->ret, &item);
    napi_set_element(env, result, 0, item);
    napi_create_int32(env, c->error, &item);
    napi_set_element(env, result, 1, item);
    if (c->syscall) napi_create_string_utf8(env, c->syscall, NAPI_AUTO_LENGTH, &item);
    else napi_get_null(env, &item);
    napi_set_element(env, result, 2, item);
    napi_create_double(env, (double)c->transfers, &item);
    napi_set_element(env, result, 3, item);
    napi_resolve_deferred(env, c->deferred, result);
    for (int i = 0; i < 2; i++) if (c->keep[i]) napi_delete_reference(env, c->keep[i]);
  }
  free(c);
}

static void *call_thread(void *data) {
  struct call *c = data;
  c->run(c);
  napi_threadsafe_function done = c->done;
  napi_call_threadsafe_function(done, c, napi_tsfn_blocking);
  napi_release_threadsafe_function(done, napi_tsfn_release);
  return NULL;
}

/* Bytes of a Uint8Array/Buffer/Float64Array argument (NULL for null/undefined when allowed). */
static int bytes_of(napi_env env, napi_value value, void **data, size_t *length, napi_typedarray_type want) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_null || type == napi_undefined) { *data = NULL; *length = 0; return 1; }
  napi_typedarray_type got;
  size_t count;
  if (napi_get_typedarray_info(env, value, &got, &count, data, NULL, NULL) != napi_ok || got != want) return 0;
  *length = count;
  return 1;
}

/* Start `c` on a thread of its own; the promise settles when it is done. */
static napi_value start_call(napi_env env, struct call *c, void (*run)(struct call *), const char *name) {
  napi_value promise, resource_name;
  c->run = run;
  napi_create_promise(env, &c->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_threadsafe_function(env, NULL, NULL, resource_name, 0, 1, NULL, NULL, NULL, settle, &c->done) != napi_ok) {
    for (int i = 0; i < 2; i++) if (c->keep[i]) napi_delete_reference(env, c->keep[i]);
    free(c);
    napi_throw_error(env, NULL, "cannot create the call's completion function");
    return NULL;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int err = pthread_create(&(pthread_t){0}, &attr, call_thread, c);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_release_threadsafe_function(c->done, napi_tsfn_abort);
    for (int i = 0; i < 2; i++) if (c->keep[i]) napi_delete_reference(env, c->keep[i]);
    free(c);
    napi_throw_error(env, "EAGAIN", "cannot start a thread for the call");
    return NULL;
  }
  return promise;
}

static napi_value ioctl_fn(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd;
  double request;
  void *args, *keep;
  size_t args_len, keep_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_double(env, argv[1], &request) != napi_ok ||
      !bytes_of(env, argv[2], &args, &args_len, napi_uint8_array) || args == NULL ||
      !bytes_of(env, argv[3], &keep, &keep_len, napi_uint8_array)) {
    napi_throw_type_error(env, NULL, "ioctl(fd, request, args: Uint8Array, keepAlive: Uint8Array | null)");
    return NULL;
  }
  struct call *c = calloc(1, sizeof *c);
  if (c == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  c->fd = fd;
  c->request = (unsigned long)request;
  c->args = args;
  napi_create_reference(env, argv[2], 1, &c->keep[0]);
  if (keep != NULL) napi_create_reference(env, argv[3], 1, &c->keep[1]);
  return start_call(env, c, run_ioctl, "btrfs-ts:ioctl");
}

static napi_value copy_pipe_fn(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  int32_t in, out, out_pipe_size;
  uint32_t chunk, pace_max_micros;
  void *progress;
  size_t progress_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_int32(env, argv[0], &in) != napi_ok ||
      napi_get_value_int32(env, argv[1], &out) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &chunk) != napi_ok || chunk == 0 ||
      napi_get_value_int32(env, argv[3], &out_pipe_size) != napi_ok ||
      !bytes_of(env, argv[4], &progress, &progress_len, napi_float64_array) || (progress != NULL && progress_len < 1) ||
      napi_get_value_uint32(env, argv[5], &pace_max_micros) != napi_ok) {
    napi_throw_type_error(env, NULL, "copyPipe(in, out, chunk, outPipeSize, progress: Float64Array | null, paceMaxMicros)");
    return NULL;
  }
  struct call *c = calloc(1, sizeof *c);
  if (c == NULL) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  c->in = in;
  c->out = out;
  c->chunk = chunk;
  c->out_pipe_size = out_pipe_size;
  c->pace_max_ns = (int64_t)pace_max_micros * 1000;
  c->progress = progress;
  if (progress != NULL) napi_create_reference(env, argv[4], 1, &c->keep[0]);
  return start_call(env, c, run_copy, "btrfs-ts:copyPipe");
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct named_function functions[] = {
    { "ioctl", ioctl_fn }, { "copyPipe", copy_pipe_fn },
  };
  export_functions(env, exports, functions, sizeof functions / sizeof functions[0]);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
