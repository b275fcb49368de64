/* Read-ahead of a regular file on threads of their own, for the stream reader (src/stream/read-ahead-window.ts).
 *
 * Why: a `--dump` of a 1 GiB stream spends a third of its time in read(2), copying the file into our
 * buffer, while the main thread could be parsing and printing. libuv's pool was tried and lost (a promise
 * per chunk, 1 MiB buffers that no longer fit the cache); this is plain threads and a ring of slots.
 *
 * The JS side hands over its own Buffers (the slots, all of one size). The file, from the fd's position,
 * is cut into pieces of a slot's size; readers fill piece k into slot k mod count with pread(2). A slot is
 * FREE (a reader may claim it), FILLING, READ (waiting for the pieces before it, see release_in_order),
 * FULL (waiting for JS) or HELD (JS reads it). JS takes pieces in order with `take()` and gives the oldest
 * back with `give()`. No reader touches a slot JS holds, and JS never reads a slot before its reader has
 * let go of it (a mutex orders the two).
 *
 *   start(fd, slots: Buffer[], offset, readers, verified?: Float64Array) → handle
 *                   pieces go to [offset, length) of each slot; with `verified`, see below
 *   take(handle)  → bytes in the next piece, which JS then holds; 0 at end of file (nothing held);
 *                   throws an Error with .code on a read error (the piece is held)
 *   give(handle)  → the oldest slot JS holds is free again
 *   stop(handle, unconsumed) → joins the readers; the fd's position is set just past what JS consumed
 * The GC's finalizer stops the readers too if JS forgets.
 *
 * With `verified` (on a CPU with SSE4.2), the readers also check the frames' CRC32C, piece by piece in
 * file order, right after reading them (frame-check.c, release_in_order), and take() stores in
 * verified[0] the offset (from the fd's starting position) up to which every frame was found good: the
 * parser skips those checks, which otherwise cost the main thread ~30 ms of a 1 GiB dump.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include "napi-exports.h"
#include "frame-check.h"
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_READ, SLOT_FULL, SLOT_HELD };

#define MAX_READERS 4

struct slot {
  uint8_t *data;       /* the JS Buffer's bytes; kept alive by `ref` */
  size_t capacity;     /* bytes a reader may fill, from data */
  size_t filled;
  int error;           /* errno of a failed read, or 0 */
  uint64_t seq;        /* which piece of the file the slot holds: bytes [seq × capacity, +filled) from the start */
  enum slot_state state;
  uint64_t verified_through; /* the frame check's progress when this piece was read */
  napi_ref ref;
};

int btrfs_ts_crc32c_supported(void);

struct reader {
  int fd;
  off_t start;         /* the fd's position when we started: piece 0 begins there */
  size_t count;
  struct slot *slots;
  pthread_t threads[MAX_READERS];
  int threads_started;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  int stopping;
  uint64_t next_claim; /* piece the next idle reader reads */
  uint64_t last_piece; /* the piece that met end of file or an error; UINT64_MAX until then */
  uint64_t next_take;  /* piece JS takes next */
  uint64_t oldest_held;/* piece JS gives back next */
  uint64_t taken_bytes;/* bytes in the pieces JS has taken */
  size_t held;         /* slots JS holds */
  int readers_waiting; /* readers asleep on `changed` until a slot is free */
  int taker_waiting;   /* JS asleep on `changed` until its piece is full */
  int stopped;
  int checking;        /* frames are checked as pieces are read (see the top); off for good after a read error */
  uint64_t check_next; /* the piece to release next (release_in_order) */
  struct frame_check check;
  double *verified_out;/* JS's verified[0] */
  napi_ref verified_ref;
};

/* A slot's state is changed under the lock, and read without it only by spin_until(). */
static void set_state(struct slot *s, enum slot_state state) {
  __atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
}

static int piece_ready(struct slot *s, uint64_t seq) {
  return s->state == SLOT_FULL && s->seq == seq;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Before sleeping on the condition variable, a thread that waits (a reader for a free slot, JS for a
 * full piece) polls the slot for up to SPIN_NS without the lock, yielding the CPU to any thread that
 * wants it. Why: waking a sleeper costs the waker a system call, and the sleeper's vCPU, gone idle,
 * ~0.2 ms to run again on this VM, while the parser takes a 256 KiB piece every ~60 µs: with a wake-up
 * per piece, the 1 GiB dump's parser waited for its reader 850 times (20 ms), and polling made that dump
 * 5 % faster. Polling without sched_yield() was slower: it kept V8's compiler threads off that vCPU.
 * Called and returns with the lock held; the caller checks the state again under it. */
#define SPIN_NS 200000.0
static void spin_until(struct reader *r, struct slot *s, enum slot_state want, uint64_t seq) {
  pthread_mutex_unlock(&r->lock);
  double deadline = now_ns() + SPIN_NS;
  for (unsigned i = 1;; i++) {
    if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == want &&
        (want != SLOT_FULL || __atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq)) break;
    if (__atomic_load_n(&r->stopping, __ATOMIC_RELAXED)) break;
    if (i % 64 == 0 && now_ns() > deadline) break;
    sched_yield();
  }
  pthread_mutex_lock(&r->lock);
}

/* Claims piece `seq` for filling (lock held; the piece's slot is FREE). */
static struct slot *claim_piece(struct reader *r, uint64_t seq) {
  struct slot *s = &r->slots[seq % r->count];
  set_state(s, SLOT_FILLING);
  __atomic_store_n(&s->seq, seq, __ATOMIC_RELAXED);
  r->next_claim = seq + 1;
  return s;
}

/* Makes the pieces read so far FULL, in file order, each after the frame check has seen it (lock held;
 * called by the filler of piece `check_next`). Pieces may be read out of order (several readers, or JS
 * reading one itself while a reader reads the next): whoever completes piece `check_next` also releases
 * the ones after it that are already read. A READ slot cannot be taken, given back or refilled, so the
 * check reads it without the lock. */
static void release_in_order(struct reader *r) {
  for (;;) {
    struct slot *s = &r->slots[r->check_next % r->count];
    if (s->state != SLOT_READ || s->seq != r->check_next) return;
    if (s->error != 0) r->checking = 0;
    if (r->checking) {
      pthread_mutex_unlock(&r->lock);
      frame_check_feed(&r->check, s->data, s->filled);
      pthread_mutex_lock(&r->lock);
    }
    s->verified_through = r->check.verified_through;
    set_state(s, SLOT_FULL);
    r->check_next++;
  }
}

/* Reads a claimed piece; called with the lock held, returns with it held. The slot belongs to the
 * caller until it is marked READ, so the read runs without the lock. */
static void fill_piece(struct reader *r, struct slot *s) {
  pthread_mutex_unlock(&r->lock);
  off_t at = r->start + (off_t)(s->seq * s->capacity);
  size_t filled = 0;
  int error = 0;
  while (filled < s->capacity) {
    ssize_t n = pread(r->fd, s->data + filled, s->capacity - filled, at + (off_t)filled);
    if (n > 0) {
      filled += (size_t)n;
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      error = errno;
      break;
    }
  }
  pthread_mutex_lock(&r->lock);
  s->filled = filled;
  s->error = error;
  set_state(s, SLOT_READ);
  /* A short piece is the end of the file (a regular file reads short only there): none after it. */
  if ((error != 0 || filled < s->capacity) && s->seq < r->last_piece) r->last_piece = s->seq;
  if (s->seq == r->check_next) release_in_order(r);
  if (r->taker_waiting) pthread_cond_broadcast(&r->changed); /* a system call: only for a sleeper */
}

/* A reader claims the next piece whose slot is free and reads it with pread(2); several may work at once. */
static void *fill_slots(void *arg) {
  struct reader *r = arg;
  pthread_mutex_lock(&r->lock);
  while (!r->stopping && r->next_claim <= r->last_piece) {
    struct slot *s = &r->slots[r->next_claim % r->count];
    if (s->state != SLOT_FREE) {
      spin_until(r, s, SLOT_FREE, 0);
      if (s->state != SLOT_FREE && !r->stopping) {
        r->readers_waiting++;
        pthread_cond_wait(&r->changed, &r->lock);
        r->readers_waiting--;
      }
      continue;
    }
    fill_piece(r, claim_piece(r, r->next_claim));
  }
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* Stops and joins the readers; drops the references to the slots. */
static void stop_readers(napi_env env, struct reader *r) {
  if (!r->stopped) {
    pthread_mutex_lock(&r->lock);
    __atomic_store_n(&r->stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->threads_started; i++) pthread_join(r->threads[i], NULL);
    r->stopped = 1;
  }
  for (size_t i = 0; i < r->count; i++) {
    if (r->slots[i].ref != NULL && env != NULL) {
      napi_delete_reference(env, r->slots[i].ref);
      r->slots[i].ref = NULL;
    }
  }
  if (r->verified_ref != NULL && env != NULL) {
    napi_delete_reference(env, r->verified_ref);
    r->verified_ref = NULL;
    r->verified_out = NULL;
  }
}

static void finalize_reader(napi_env env, void *data, void *hint) {
  (void)hint;
  struct reader *r = data;
  stop_readers(env, r);
  pthread_cond_destroy(&r->changed);
  pthread_mutex_destroy(&r->lock);
  free(r->slots);
  free(r);
}

static void throw_errno(napi_env env, int error, const char *call) {
  const char *name = strerrorname_np(error);
  if (name == NULL) name = "EIO";
  char text[160];
  snprintf(text, sizeof text, "%s: %s, %s", name, strerror(error), call);
  napi_value code, message, exception;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &exception);
  napi_throw(env, exception);
}

/* The handle (first argument) and, when wanted, the second argument as a number. */
static struct reader *get_reader(napi_env env, napi_callback_info info, double *second) {
  size_t argc = 2;
  napi_value argv[2];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < (second ? 2u : 1u) ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL ||
      (second != NULL && napi_get_value_double(env, argv[1], second) != napi_ok)) {
    napi_throw_type_error(env, NULL, "expected a read-ahead handle");
    return NULL;
  }
  struct reader *r = data;
  if (r->stopped) {
    napi_throw_error(env, NULL, "read-ahead already stopped");
    return NULL;
  }
  return r;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t fd;
  uint32_t count, offset, readers;
  napi_valuetype verified_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count < 2 ||
      napi_get_value_uint32(env, argv[2], &offset) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &readers) != napi_ok || readers < 1 || readers > MAX_READERS ||
      (argc >= 5 && napi_typeof(env, argv[4], &verified_type) != napi_ok)) {
    napi_throw_type_error(env, NULL, "start(fd, slots: Buffer[] (two or more, of one size), offset, readers (1-4), "
                                     "verified?: Float64Array)");
    return NULL;
  }
  off_t position = lseek(fd, 0, SEEK_CUR);
  if (position < 0) {
    throw_errno(env, errno, "lseek");
    return NULL;
  }
  struct reader *r = calloc(1, sizeof *r);
  struct slot *slots = calloc(count, sizeof *slots);
  if (r == NULL || slots == NULL) {
    free(r);
    free(slots);
    throw_errno(env, ENOMEM, "read-ahead");
    return NULL;
  }
  r->fd = fd;
  r->start = position;
  r->count = count;
  r->slots = slots;
  r->last_piece = UINT64_MAX;
  pthread_mutex_init(&r->lock, NULL);
  pthread_cond_init(&r->changed, NULL);
  r->stopped = 1; /* until the readers run: the finalizer then only drops references */
  napi_value handle;
  if (napi_create_external(env, r, finalize_reader, NULL, &handle) != napi_ok) {
    finalize_reader(env, r, NULL);
    napi_throw_error(env, NULL, "read-ahead: cannot create its handle");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    void *data;
    size_t length;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok ||
        napi_get_buffer_info(env, element, &data, &length) != napi_ok || length <= offset ||
        (i > 0 && length - offset != slots[0].capacity)) {
      napi_throw_type_error(env, NULL, "every slot must be a Buffer of one size, longer than the offset");
      return NULL;
    }
    slots[i].data = (uint8_t *)data + offset;
    slots[i].capacity = length - offset;
    napi_create_reference(env, element, 1, &slots[i].ref);
  }
  if (verified_type != napi_undefined) {
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_get_typedarray_info(env, argv[4], &type, &length, &data, NULL, NULL) != napi_ok ||
        type != napi_float64_array || length < 1) {
      napi_throw_type_error(env, NULL, "verified must be a Float64Array");
      return NULL;
    }
    r->verified_out = data;
    *r->verified_out = 0;
    napi_create_reference(env, argv[4], 1, &r->verified_ref);
    r->checking = btrfs_ts_crc32c_supported();
    frame_check_init(&r->check);
  }
  r->stopped = 0;
  for (uint32_t i = 0; i < readers; i++) {
    if (pthread_create(&r->threads[i], NULL, fill_slots, r) != 0) break;
    r->threads_started++;
  }
  if (r->threads_started == 0) {
    stop_readers(env, r);
    throw_errno(env, EAGAIN, "pthread_create");
    return NULL;
  }
  return handle;
}

static napi_value take(napi_env env, napi_callback_info info) {
  struct reader *r = get_reader(env, info, NULL);
  if (r == NULL) return NULL;
  pthread_mutex_lock(&r->lock);
  if (r->held == r->count) {
    pthread_mutex_unlock(&r->lock);
    napi_throw_error(env, NULL, "read-ahead: every slot is held; give() one back first");
    return NULL;
  }
  uint64_t seq = r->next_take;
  if (seq > r->last_piece) {
    /* Past the end: report end of file again. */
    pthread_mutex_unlock(&r->lock);
    napi_value zero;
    napi_create_double(env, 0, &zero);
    return zero;
  }
  struct slot *s = &r->slots[seq % r->count];
  /* Not even claimed: the readers are asleep (waking one takes ~0.2 ms on this VM, while the parser
   * can need a piece every 10 µs). Read it here rather than wait. */
  if (r->next_claim == seq && s->state == SLOT_FREE) fill_piece(r, claim_piece(r, seq));
  if (!piece_ready(s, seq)) spin_until(r, s, SLOT_FULL, seq);
  while (!piece_ready(s, seq)) {
    r->taker_waiting = 1;
    pthread_cond_wait(&r->changed, &r->lock);
    r->taker_waiting = 0;
  }
  size_t filled = s->filled;
  int error = s->error;
  if (r->verified_out != NULL) *r->verified_out = (double)s->verified_through;
  r->next_take++;
  r->taken_bytes += filled;
  if (filled == 0 && error == 0) {
    set_state(s, SLOT_FREE); /* the end of the file: nothing to hold, as for any take after it */
  } else {
    set_state(s, SLOT_HELD);
    r->held++;
  }
  pthread_mutex_unlock(&r->lock);
  if (error != 0) {
    throw_errno(env, error, "read");
    return NULL;
  }
  napi_value result;
  napi_create_double(env, (double)filled, &result);
  return result;
}

static napi_value give(napi_env env, napi_callback_info info) {
  struct reader *r = get_reader(env, info, NULL);
  if (r == NULL) return NULL;
  pthread_mutex_lock(&r->lock);
  if (r->held == 0) {
    pthread_mutex_unlock(&r->lock);
    napi_throw_error(env, NULL, "read-ahead: no slot is held");
    return NULL;
  }
  set_state(&r->slots[r->oldest_held % r->count], SLOT_FREE);
  r->oldest_held++;
  r->held--;
  if (r->readers_waiting > 0) pthread_cond_broadcast(&r->changed); /* a system call: only for sleepers */
  pthread_mutex_unlock(&r->lock);
  return NULL;
}

/* stop(handle, unconsumed): joins the readers and leaves the fd's position just after the bytes JS
 * consumed (all it took, less the `unconsumed` bytes it still had in hand), as if it had read only those. */
static napi_value stop(napi_env env, napi_callback_info info) {
  double unconsumed = 0;
  struct reader *r = get_reader(env, info, &unconsumed);
  if (r == NULL) return NULL;
  stop_readers(env, r);
  if (unconsumed < 0 || unconsumed > (double)r->taken_bytes) unconsumed = 0;
  if (lseek(r->fd, r->start + (off_t)(r->taken_bytes - (uint64_t)unconsumed), SEEK_SET) < 0) {
    throw_errno(env, errno, "lseek");
    return NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct named_function functions[] = {
    { "start", start }, { "take", take }, { "give", give }, { "stop", stop },
  };
  export_functions(env, exports, functions, sizeof functions / sizeof functions[0]);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
