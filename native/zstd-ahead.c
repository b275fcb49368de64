/* zstd extents decoded on a helper thread while the receive applies earlier commands
 * (src/compress/zstd-ahead.ts, used by src/receive/decode-ahead.ts for --force-decompress and for the
 * check of compressed extents before they are written as they are). The receive reads up to a few
 * extents ahead of the one it applies and submits each as soon as it is read.
 *
 * Why not libuv's pool (koffi's async calls, tried before): a promise and a pool hand-off per extent, and
 * on this VM a sleeping thread takes ~0.2 ms to wake, so the main thread waited for decodes it could
 * have done itself. Here the receive queues a job per extent and later finishes it: if the helper has not
 * started that job yet, the receive decodes it itself, on the spot. So it is never slower than decoding
 * inline, and whatever the helper gets done in the meantime is time saved.
 *
 * Waking a thread is what costs (a futex call for the waker, ~0.2 ms of latency for the sleeper), and
 * on a loaded machine the helper may be preempted in the middle of a job. So: a sleeping helper is
 * woken only once WAKE_BATCH jobs are waiting; it takes the NEWEST job first, which keeps it away from
 * the oldest one, the next the receive needs (oldest first made the receive wait for the helper ~15x
 * as often: 3.5k of 27k extents against 200); and finish() polls briefly for a job the helper is
 * running before it sleeps.
 *
 * The system's libzstd.so.1 is opened with dlopen (the library btrfs-progs uses too),
 * so building needs no zstd headers. Jobs live in JS-chosen slots (0..SLOTS-1); their Buffers are kept
 * alive by references until the job is finished.
 *
 *   create() → pool (undefined when libzstd.so.1 cannot be loaded)
 *   submit(pool, slot, frame: Buffer, out: Buffer)   queue one zstd frame to decode into out
 *   submitCheck(pool, slot, frame: Buffer, outLen)   queue one frame only to see that it decodes (to at
 *                                                    most outLen <= 128 KiB bytes, into the decoding
 *                                                    thread's scratch space: no output buffer per job)
 *   finish(pool, slot) → bytes produced; or a string: libzstd's error name (the frame is corrupt)
 *   close(pool)                                       joins the helper (also done by the GC)
 *   stats(pool) → [decoded by finish() itself, waited for the helper, found done]
 *   frameSize(data) → bytes of the frame at the start of data; or a string: libzstd's error name
 *   contentSize(frame) → the decoded size the frame declares, -1 when it does not say; or an error name
 *   decode(frame, out) → bytes produced, decoding on the calling thread; or libzstd's error name
 * The last three let src/compress/zstd.ts decode the receive's odd extents without loading zstd-napi
 * (a second libzstd in the process) when this module is there.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi-exports.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>

#define SLOTS 16
/* btrfs writes zstd frames with a window log of at most 17; refuse frames that ask for more than 2^20. */
#define WINDOW_LOG_MAX 20
#define ZSTD_d_windowLogMax 100
/* A sleeping helper is woken when this many jobs wait (one wake-up per batch, not per extent). */
#define WAKE_BATCH 4
/* How long finish() polls for a job the helper is running (decoding an extent takes ~20 us). */
#define FINISH_POLL_NS 20000
/* Largest decoded size of a checked frame (submitCheck): btrfs' largest extent, 128 KiB. */
#define SCRATCH_SIZE (128 * 1024)

typedef struct ZSTD_DCtx_s ZSTD_DCtx;
static ZSTD_DCtx *(*zstd_create)(void);
static size_t (*zstd_free)(ZSTD_DCtx *);
static size_t (*zstd_set_parameter)(ZSTD_DCtx *, int, int);
static size_t (*zstd_decompress)(ZSTD_DCtx *, void *, size_t, const void *, size_t);
static unsigned (*zstd_is_error)(size_t);
static const char *(*zstd_error_name)(size_t);
static size_t (*zstd_frame_size)(const void *, size_t);
static unsigned long long (*zstd_content_size)(const void *, size_t);
#define ZSTD_CONTENTSIZE_UNKNOWN (0ULL - 1)
#define ZSTD_CONTENTSIZE_ERROR (0ULL - 2)

enum job_state { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
  enum job_state state;
  const uint8_t *frame;
  size_t frame_len;
  uint8_t *out;
  size_t out_len;
  size_t result;        /* libzstd's return: bytes produced, or an error code */
  uint64_t order;       /* submission order: the helper takes the newest queued job */
  napi_ref frame_ref, out_ref;
};

struct pool {
  struct job jobs[SLOTS];
  uint64_t submitted;
  int queued;           /* jobs in JOB_QUEUED */
  pthread_mutex_t lock;
  pthread_cond_t work;  /* the helper waits here for jobs */
  pthread_cond_t done;  /* finish() waits here for a job the helper is running */
  pthread_t helper;
  int helper_running;
  int helper_sleeping;
  int closing;
  ZSTD_DCtx *helper_ctx; /* contexts are not shared between threads: one for the helper, one for JS */
  ZSTD_DCtx *own_ctx;
  uint8_t *helper_scratch; /* where checked frames (out == NULL) are decoded: one per thread */
  uint8_t *own_scratch;
  double stats[3];      /* finish() found the job: queued (decoded it itself), running, done */
};

static int load_zstd(void) {
  static int loaded = -1;
  if (loaded >= 0) return loaded;
  loaded = 0;
  void *lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) return 0;
  zstd_create = (ZSTD_DCtx * (*)(void)) dlsym(lib, "ZSTD_createDCtx");
  zstd_free = (size_t(*)(ZSTD_DCtx *))dlsym(lib, "ZSTD_freeDCtx");
  zstd_set_parameter = (size_t(*)(ZSTD_DCtx *, int, int))dlsym(lib, "ZSTD_DCtx_setParameter");
  zstd_decompress = (size_t(*)(ZSTD_DCtx *, void *, size_t, const void *, size_t))dlsym(lib, "ZSTD_decompressDCtx");
  zstd_is_error = (unsigned (*)(size_t))dlsym(lib, "ZSTD_isError");
  zstd_error_name = (const char *(*)(size_t))dlsym(lib, "ZSTD_getErrorName");
  zstd_frame_size = (size_t(*)(const void *, size_t))dlsym(lib, "ZSTD_findFrameCompressedSize");
  zstd_content_size = (unsigned long long (*)(const void *, size_t))dlsym(lib, "ZSTD_getFrameContentSize");
  loaded = zstd_create && zstd_free && zstd_set_parameter && zstd_decompress && zstd_is_error && zstd_error_name &&
           zstd_frame_size && zstd_content_size;
  return loaded;
}

static ZSTD_DCtx *new_context(void) {
  ZSTD_DCtx *ctx = zstd_create();
  if (ctx != NULL && zstd_is_error(zstd_set_parameter(ctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX))) {
    zstd_free(ctx);
    return NULL;
  }
  return ctx;
}

/* Decodes a job that the caller has marked RUNNING; called and returns with the lock held. */
static void run_job(struct pool *p, struct job *j, ZSTD_DCtx *ctx, uint8_t *scratch) {
  pthread_mutex_unlock(&p->lock);
  size_t result = zstd_decompress(ctx, j->out != NULL ? j->out : scratch, j->out_len, j->frame, j->frame_len);
  pthread_mutex_lock(&p->lock);
  j->result = result;
  __atomic_store_n(&j->state, JOB_DONE, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&p->done); /* no system call when nobody waits */
}

/* Marks a queued job as taken (by the helper or by finish()); lock held. */
static void take_job(struct pool *p, struct job *j) {
  j->state = JOB_RUNNING;
  p->queued--;
}

static struct job *newest_queued(struct pool *p) {
  struct job *newest = NULL;
  for (int i = 0; i < SLOTS; i++) {
    struct job *j = &p->jobs[i];
    if (j->state == JOB_QUEUED && (newest == NULL || j->order > newest->order)) newest = j;
  }
  return newest;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Polls until the job is done or `ns` have passed. */
static void poll_done(const struct job *j, uint64_t ns) {
  uint64_t deadline = now_ns() + ns;
  for (int i = 0; __atomic_load_n(&j->state, __ATOMIC_ACQUIRE) != JOB_DONE; i++) {
    if ((i & 63) == 63 && now_ns() > deadline) return;
    __builtin_ia32_pause();
  }
}

static void *helper_main(void *arg) {
  struct pool *p = arg;
  pthread_mutex_lock(&p->lock);
  while (!p->closing) {
    struct job *j = newest_queued(p);
    if (j == NULL) {
      p->helper_sleeping = 1;
      pthread_cond_wait(&p->work, &p->lock);
      p->helper_sleeping = 0;
      continue;
    }
    take_job(p, j);
    run_job(p, j, p->helper_ctx, p->helper_scratch);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static void close_pool(napi_env env, struct pool *p) {
  if (p->helper_running) {
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->helper, NULL);
    p->helper_running = 0;
  }
  for (int i = 0; i < SLOTS; i++) {
    struct job *j = &p->jobs[i];
    if (env != NULL && j->frame_ref != NULL) napi_delete_reference(env, j->frame_ref);
    if (env != NULL && j->out_ref != NULL) napi_delete_reference(env, j->out_ref);
    j->frame_ref = j->out_ref = NULL;
    j->state = JOB_IDLE;
  }
  free(p->helper_scratch);
  free(p->own_scratch);
  p->helper_scratch = p->own_scratch = NULL;
  if (p->helper_ctx != NULL) zstd_free(p->helper_ctx);
  if (p->own_ctx != NULL) zstd_free(p->own_ctx);
  p->helper_ctx = p->own_ctx = NULL;
}

static void finalize_pool(napi_env env, void *data, void *hint) {
  (void)hint;
  struct pool *p = data;
  close_pool(env, p);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

/* The pool (first argument) and the slot (second), checked. */
static struct pool *get_pool(napi_env env, napi_callback_info info, size_t want, napi_value *argv, uint32_t *slot) {
  size_t argc = want;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "expected a zstd-ahead pool");
    return NULL;
  }
  struct pool *p = data;
  if (p->own_ctx == NULL) {
    napi_throw_error(env, NULL, "zstd-ahead pool already closed");
    return NULL;
  }
  if (slot != NULL && (napi_get_value_uint32(env, argv[1], slot) != napi_ok || *slot >= SLOTS)) {
    napi_throw_range_error(env, NULL, "slot out of range");
    return NULL;
  }
  return p;
}

static napi_value create(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_undefined(env, &result);
  if (!load_zstd()) return result;
  struct pool *p = calloc(1, sizeof *p);
  if (p == NULL) return result;
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  p->helper_ctx = new_context();
  p->own_ctx = new_context();
  /* Its pages are touched only where checked frames are decoded. */
  p->helper_scratch = malloc(SCRATCH_SIZE);
  p->own_scratch = malloc(SCRATCH_SIZE);
  if (p->helper_ctx == NULL || p->own_ctx == NULL || p->helper_scratch == NULL || p->own_scratch == NULL ||
      napi_create_external(env, p, finalize_pool, NULL, &result) != napi_ok) {
    finalize_pool(env, p, NULL);
    napi_get_undefined(env, &result);
    return result;
  }
  /* Without a helper every job is simply decoded by finish(). */
  p->helper_running = pthread_create(&p->helper, NULL, helper_main, p) == 0;
  return result;
}

/* submit(pool, slot, frame, out: Buffer) and submitCheck(pool, slot, frame, outLen: number <= 128 KiB). */
static napi_value queue(napi_env env, napi_callback_info info, int check) {
  napi_value argv[4];
  uint32_t slot, check_len = 0;
  struct pool *p = get_pool(env, info, 4, argv, &slot);
  if (p == NULL) return NULL;
  void *frame, *out = NULL;
  size_t frame_len, out_len;
  if (napi_get_buffer_info(env, argv[2], &frame, &frame_len) != napi_ok ||
      (check ? napi_get_value_uint32(env, argv[3], &check_len) != napi_ok || check_len > SCRATCH_SIZE
             : napi_get_buffer_info(env, argv[3], &out, &out_len) != napi_ok)) {
    napi_throw_type_error(env, NULL, check ? "submitCheck(pool, slot, frame: Buffer, outLen <= 131072)"
                                           : "submit(pool, slot, frame: Buffer, out: Buffer)");
    return NULL;
  }
  if (check) out_len = check_len;
  struct job *j = &p->jobs[slot];
  if (j->state != JOB_IDLE) {
    napi_throw_error(env, NULL, "zstd-ahead: slot in use");
    return NULL;
  }
  napi_create_reference(env, argv[2], 1, &j->frame_ref);
  if (!check) napi_create_reference(env, argv[3], 1, &j->out_ref);
  pthread_mutex_lock(&p->lock);
  j->frame = frame;
  j->frame_len = frame_len;
  j->out = out;
  j->out_len = out_len;
  j->order = p->submitted++;
  j->state = JOB_QUEUED;
  p->queued++;
  if (p->helper_sleeping && p->queued >= WAKE_BATCH) pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

static napi_value submit(napi_env env, napi_callback_info info) { return queue(env, info, 0); }
static napi_value submit_check(napi_env env, napi_callback_info info) { return queue(env, info, 1); }

static napi_value finish(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t slot;
  struct pool *p = get_pool(env, info, 2, argv, &slot);
  if (p == NULL) return NULL;
  struct job *j = &p->jobs[slot];
  pthread_mutex_lock(&p->lock);
  if (j->state == JOB_IDLE) {
    pthread_mutex_unlock(&p->lock);
    napi_throw_error(env, NULL, "zstd-ahead: nothing submitted in this slot");
    return NULL;
  }
  p->stats[j->state == JOB_QUEUED ? 0 : j->state == JOB_RUNNING ? 1 : 2]++;
  if (j->state == JOB_QUEUED) {
    /* The helper has not got to it: decode it here rather than wait. */
    take_job(p, j);
    run_job(p, j, p->own_ctx, p->own_scratch);
  } else if (j->state == JOB_RUNNING) {
    /* Decoding an extent takes tens of microseconds: poll rather than sleep and be woken. */
    pthread_mutex_unlock(&p->lock);
    poll_done(j, FINISH_POLL_NS);
    pthread_mutex_lock(&p->lock);
  }
  while (j->state != JOB_DONE) pthread_cond_wait(&p->done, &p->lock);
  size_t result = j->result;
  j->state = JOB_IDLE;
  pthread_mutex_unlock(&p->lock);
  napi_delete_reference(env, j->frame_ref);
  if (j->out_ref != NULL) napi_delete_reference(env, j->out_ref);
  j->frame_ref = j->out_ref = NULL;
  napi_value value;
  if (zstd_is_error(result)) napi_create_string_utf8(env, zstd_error_name(result), NAPI_AUTO_LENGTH, &value);
  else napi_create_double(env, (double)result, &value);
  return value;
}

static napi_value close_fn(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  struct pool *p = get_pool(env, info, 1, argv, NULL);
  if (p == NULL) return NULL;
  close_pool(env, p);
  return NULL;
}

static napi_value error_name(napi_env env, size_t code) {
  napi_value value;
  napi_create_string_utf8(env, zstd_error_name(code), NAPI_AUTO_LENGTH, &value);
  return value;
}

/* The Buffer argument of frameSize/contentSize, with libzstd loaded; NULL after throwing. */
static void *buffer_arg(napi_env env, napi_callback_info info, size_t *len) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || !load_zstd() || napi_get_buffer_info(env, argv[0], &data, len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a Buffer (and libzstd.so.1)");
    return NULL;
  }
  return data;
}

/* frameSize(data) → bytes of the frame at the start of data, or libzstd's error name. */
static napi_value frame_size(napi_env env, napi_callback_info info) {
  size_t len;
  void *data = buffer_arg(env, info, &len);
  if (data == NULL) return NULL;
  size_t frame = zstd_frame_size(data, len);
  if (zstd_is_error(frame)) return error_name(env, frame);
  napi_value result;
  napi_create_double(env, (double)frame, &result);
  return result;
}

/* contentSize(frame) → the decoded size the frame declares, -1 when it does not say, or an error name. */
static napi_value content_size(napi_env env, napi_callback_info info) {
  size_t len;
  void *data = buffer_arg(env, info, &len);
  if (data == NULL) return NULL;
  unsigned long long content = zstd_content_size(data, len);
  napi_value result;
  if (content == ZSTD_CONTENTSIZE_ERROR) napi_create_string_utf8(env, "Unknown frame descriptor", NAPI_AUTO_LENGTH, &result);
  else napi_create_double(env, content == ZSTD_CONTENTSIZE_UNKNOWN ? -1 : (double)content, &result);
  return result;
}

/* decode(frame, out) → bytes produced, or libzstd's error name. Main thread only (one context). */
static napi_value decode_now(napi_env env, napi_callback_info info) {
  static ZSTD_DCtx *ctx;
  size_t argc = 2;
  napi_value argv[2], result;
  void *frame, *out;
  size_t frame_len, out_len;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || !load_zstd() || napi_get_buffer_info(env, argv[0], &frame, &frame_len) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &out, &out_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "decode(frame: Buffer, out: Buffer), with libzstd.so.1");
    return NULL;
  }
  if (ctx == NULL && (ctx = new_context()) == NULL) {
    napi_throw_error(env, NULL, "zstd: cannot create a decompression context");
    return NULL;
  }
  size_t produced = zstd_decompress(ctx, out, out_len, frame, frame_len);
  if (zstd_is_error(produced)) return error_name(env, produced);
  napi_create_double(env, (double)produced, &result);
  return result;
}

/* stats(pool) → [decoded by finish() itself, waited for the helper, found done]: for measuring. */
static napi_value stats_fn(napi_env env, napi_callback_info info) {
  napi_value argv[1], result, n;
  struct pool *p = get_pool(env, info, 1, argv, NULL);
  if (p == NULL) return NULL;
  napi_create_array_with_length(env, 3, &result);
  for (uint32_t i = 0; i < 3; i++) {
    napi_create_double(env, p->stats[i], &n);
    napi_set_element(env, result, i, n);
  }
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct named_function functions[] = {
    { "create", create }, { "submit", submit }, { "submitCheck", submit_check }, { "finish", finish }, { "close", close_fn }, { "stats", stats_fn },
    { "frameSize", frame_size }, { "contentSize", content_size }, { "decode", decode_now },
  };
  export_functions(env, exports, functions, sizeof functions / sizeof functions[0]);
  napi_value slots;
  napi_create_uint32(env, SLOTS, &slots);
  napi_set_named_property(env, exports, "SLOTS", slots);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
