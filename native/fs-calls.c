/* The receive's hot file system calls as plain Node-API functions (src/sys/fs-calls.ts; koffi is the
 * fallback). Each returns the call's result, or -errno when it fails, so no second call is needed to fetch
 * errno. Why not koffi for these: a koffi call with Buffer arguments costs ~0.5-0.8 µs more than a
 * Node-API one (it checks each object's type tag), a path needs a NUL-terminated copy on the JS heap, and
 * ENCODED_WRITE needs the payload's address as a BigInt; a receive makes ~250k such calls.
 *
 * Paths come as Buffers without a terminating NUL and are copied onto the stack with one, as cPath() does
 * in JS: a path of PATH_MAX bytes or more fails with ENAMETOOLONG, as the kernel would fail it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "napi-exports.h"

#define MAX_ARGS 9

/* One call's arguments, converted; `ok` is 0 after a TypeError has been thrown. */
struct args {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int ok;
};

static int get_args(napi_env env, napi_callback_info info, size_t want, struct args *a, const char *usage) {
  a->env = env;
  a->argc = MAX_ARGS;
  a->ok = napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) == napi_ok && a->argc >= want;
  if (!a->ok) napi_throw_type_error(env, NULL, usage);
  return a->ok;
}

static int32_t int_arg(struct args *a, size_t i, const char *usage) {
  int32_t value = 0;
  if (a->ok && napi_get_value_int32(a->env, a->argv[i], &value) != napi_ok) {
    a->ok = 0;
    napi_throw_type_error(a->env, NULL, usage);
  }
  return value;
}

static int64_t int64_arg(struct args *a, size_t i, const char *usage) {
  int64_t value = 0;
  if (a->ok && napi_get_value_int64(a->env, a->argv[i], &value) != napi_ok) {
    a->ok = 0;
    napi_throw_type_error(a->env, NULL, usage);
  }
  return value;
}

/* The bytes of a Buffer (or any Uint8Array) argument. */
static void *bytes_arg(struct args *a, size_t i, size_t *length, const char *usage) {
  void *data = NULL;
  *length = 0;
  if (a->ok && napi_get_buffer_info(a->env, a->argv[i], &data, length) != napi_ok) {
    a->ok = 0;
    napi_throw_type_error(a->env, NULL, usage);
  }
  return data;
}

/* A Buffer argument that must hold at least `room` bytes (a struct the call fills or reads): a smaller
 * one throws a RangeError. */
static void *room_arg(struct args *a, size_t i, size_t room, const char *usage) {
  size_t length;
  void *data = bytes_arg(a, i, &length, usage);
  if (a->ok && length < room) {
    a->ok = 0;
    napi_throw_range_error(a->env, NULL, usage);
  }
  return data;
}

/* A path argument copied into `out` with a NUL; 0 when it is too long for any path (ENAMETOOLONG). */
static int path_arg(struct args *a, size_t i, char out[PATH_MAX], const char *usage) {
  size_t length;
  const void *bytes = bytes_arg(a, i, &length, usage);
  if (!a->ok || length >= PATH_MAX) return 0;
  memcpy(out, bytes, length);
  out[length] = 0;
  return 1;
}

static napi_value result(napi_env env, long value) {
  napi_value out;
  napi_create_int32(env, value < 0 ? -errno : (int32_t)value, &out);
  return out;
}

static napi_value too_long(napi_env env) {
  napi_value out;
  napi_create_int32(env, -ENAMETOOLONG, &out);
  return out;
}

#define USAGE_OPENAT "openat(dirfd, path, flags, mode): integers and a Buffer"
static napi_value call_openat(napi_env env, napi_callback_info info) {
  struct args a;
  char path[PATH_MAX];
  if (!get_args(env, info, 4, &a, USAGE_OPENAT)) return NULL;
  int dirfd = int_arg(&a, 0, USAGE_OPENAT), flags = int_arg(&a, 2, USAGE_OPENAT), mode = int_arg(&a, 3, USAGE_OPENAT);
  int fits = path_arg(&a, 1, path, USAGE_OPENAT);
  if (!a.ok) return NULL;
  return fits ? result(env, openat(dirfd, path, flags, (mode_t)mode)) : too_long(env);
}

/* struct open_how (linux/openat2.h), spelled out so that no kernel header is needed to build. */
struct open_how_args {
  uint64_t flags, mode, resolve;
};

#define USAGE_OPENAT2 "openat2(dirfd, path, flags, mode, resolve): integers and a Buffer"
static napi_value call_openat2(napi_env env, napi_callback_info info) {
  struct args a;
  char path[PATH_MAX];
  if (!get_args(env, info, 5, &a, USAGE_OPENAT2)) return NULL;
  int dirfd = int_arg(&a, 0, USAGE_OPENAT2);
  struct open_how_args how = {
    .flags = (uint32_t)int_arg(&a, 2, USAGE_OPENAT2),
    .mode = (uint32_t)int_arg(&a, 3, USAGE_OPENAT2),
    .resolve = (uint32_t)int_arg(&a, 4, USAGE_OPENAT2),
  };
  int fits = path_arg(&a, 1, path, USAGE_OPENAT2);
  if (!a.ok) return NULL;
  return fits ? result(env, syscall(437 /* SYS_openat2 */, dirfd, path, &how, sizeof how)) : too_long(env);
}

#define USAGE_MKDIRAT "mkdirat(dirfd, path, mode): integers and a Buffer"
static napi_value call_mkdirat(napi_env env, napi_callback_info info) {
  struct args a;
  char path[PATH_MAX];
  if (!get_args(env, info, 3, &a, USAGE_MKDIRAT)) return NULL;
  int dirfd = int_arg(&a, 0, USAGE_MKDIRAT), mode = int_arg(&a, 2, USAGE_MKDIRAT);
  int fits = path_arg(&a, 1, path, USAGE_MKDIRAT);
  if (!a.ok) return NULL;
  return fits ? result(env, mkdirat(dirfd, path, (mode_t)mode)) : too_long(env);
}

#define USAGE_FCHMOD "fchmod(fd, mode): integers"
static napi_value call_fchmod(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, 2, &a, USAGE_FCHMOD)) return NULL;
  int fd = int_arg(&a, 0, USAGE_FCHMOD), mode = int_arg(&a, 1, USAGE_FCHMOD);
  if (!a.ok) return NULL;
  return result(env, fchmod(fd, (mode_t)mode));
}

#define USAGE_FCHMODAT2 "fchmodat2(dirfd, path, mode, flags): integers and a Buffer"
static napi_value call_fchmodat2(napi_env env, napi_callback_info info) {
  struct args a;
  char path[PATH_MAX];
  if (!get_args(env, info, 4, &a, USAGE_FCHMODAT2)) return NULL;
  int dirfd = int_arg(&a, 0, USAGE_FCHMODAT2), mode = int_arg(&a, 2, USAGE_FCHMODAT2), flags = int_arg(&a, 3, USAGE_FCHMODAT2);
  int fits = path_arg(&a, 1, path, USAGE_FCHMODAT2);
  if (!a.ok) return NULL;
  return fits ? result(env, syscall(452 /* SYS_fchmodat2 */, dirfd, path, (mode_t)mode, flags)) : too_long(env);
}

/* utimensat(dirfd, path, times, flags), `times` two struct timespec (32 bytes); futimens is utimensat
 * with an empty path and AT_EMPTY_PATH. */
#define USAGE_UTIMENSAT "utimensat(dirfd, path, times, flags): integers, a Buffer and 32 bytes of times"
static napi_value call_utimensat(napi_env env, napi_callback_info info) {
  struct args a;
  char path[PATH_MAX];
  if (!get_args(env, info, 4, &a, USAGE_UTIMENSAT)) return NULL;
  int dirfd = int_arg(&a, 0, USAGE_UTIMENSAT), flags = int_arg(&a, 3, USAGE_UTIMENSAT);
  const struct timespec *times = room_arg(&a, 2, 2 * sizeof(struct timespec), USAGE_UTIMENSAT);
  int fits = path_arg(&a, 1, path, USAGE_UTIMENSAT);
  if (!a.ok) return NULL;
  return fits ? result(env, utimensat(dirfd, path, times, flags)) : too_long(env);
}

#define USAGE_FUTIMENS "futimens(fd, times): an integer and 32 bytes of times"
static napi_value call_futimens(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, 2, &a, USAGE_FUTIMENS)) return NULL;
  int fd = int_arg(&a, 0, USAGE_FUTIMENS);
  const struct timespec *times = room_arg(&a, 1, 2 * sizeof(struct timespec), USAGE_FUTIMENS);
  if (!a.ok) return NULL;
  return result(env, futimens(fd, times));
}

#define USAGE_FSTATAT "fstatat(dirfd, path, statbuf, flags): integers, a Buffer and a struct stat's room"
static napi_value call_fstatat(napi_env env, napi_callback_info info) {
  struct args a;
  char path[PATH_MAX];
  if (!get_args(env, info, 4, &a, USAGE_FSTATAT)) return NULL;
  int dirfd = int_arg(&a, 0, USAGE_FSTATAT), flags = int_arg(&a, 3, USAGE_FSTATAT);
  struct stat *st = room_arg(&a, 2, sizeof(struct stat), USAGE_FSTATAT);
  int fits = path_arg(&a, 1, path, USAGE_FSTATAT);
  if (!a.ok) return NULL;
  return fits ? result(env, fstatat(dirfd, path, st, flags)) : too_long(env);
}

/* pwrite(fd, buf + start, length, position): the bytes written, or -errno. */
#define USAGE_PWRITE "pwrite(fd, buffer, start, length, position): integers and a Buffer holding start + length bytes"
static napi_value call_pwrite(napi_env env, napi_callback_info info) {
  struct args a;
  size_t size;
  if (!get_args(env, info, 5, &a, USAGE_PWRITE)) return NULL;
  int fd = int_arg(&a, 0, USAGE_PWRITE);
  const uint8_t *data = bytes_arg(&a, 1, &size, USAGE_PWRITE);
  int64_t start = int64_arg(&a, 2, USAGE_PWRITE), length = int64_arg(&a, 3, USAGE_PWRITE);
  int64_t position = int64_arg(&a, 4, USAGE_PWRITE);
  if (a.ok && (start < 0 || length < 0 || position < 0 || (uint64_t)start + (uint64_t)length > size)) {
    napi_throw_range_error(env, NULL, USAGE_PWRITE);
    return NULL;
  }
  if (!a.ok) return NULL;
  /* One call writes at most INT32_MAX bytes, so the result fits the int32 returned (Linux caps a write
   * at 0x7ffff000 bytes anyway); pwriteAll() loops over short writes. */
  if (length > INT32_MAX) length = INT32_MAX;
  return result(env, pwrite(fd, data + start, (size_t)length, (off_t)position));
}

#define USAGE_CLOSE "close(fd): an integer"
static napi_value call_close(napi_env env, napi_callback_info info) {
  struct args a;
  if (!get_args(env, info, 1, &a, USAGE_CLOSE)) return NULL;
  int fd = int_arg(&a, 0, USAGE_CLOSE);
  if (!a.ok) return NULL;
  return result(env, close(fd));
}

/* struct btrfs_ioctl_encoded_io_args (linux/btrfs.h, x86-64: 128 bytes; the ABI test checks the offsets
 * src/sys/encoded-io.ts uses, which these fields follow). */
struct encoded_io_args {
  const struct iovec *iov;
  unsigned long iovcnt;
  int64_t offset;
  uint64_t flags;
  uint64_t len;
  uint64_t unencoded_len;
  uint64_t unencoded_offset;
  uint32_t compression;
  uint32_t encryption;
  uint8_t reserved[64];
};
_Static_assert(sizeof(struct encoded_io_args) == 128, "btrfs_ioctl_encoded_io_args is 128 bytes");

/* ioctl(fd, request, &args) for BTRFS_IOC_ENCODED_WRITE: the struct and its one-entry iovec are built here
 * around `data`, so JS passes numbers only. */
#define USAGE_ENCODED_WRITE \
  "encodedWrite(fd, request, data, offset, len, unencodedLen, unencodedOffset, compression, encryption): integers and a Buffer"
static napi_value call_encoded_write(napi_env env, napi_callback_info info) {
  struct args a;
  size_t length;
  if (!get_args(env, info, 9, &a, USAGE_ENCODED_WRITE)) return NULL;
  int fd = int_arg(&a, 0, USAGE_ENCODED_WRITE);
  unsigned long request = (uint32_t)int64_arg(&a, 1, USAGE_ENCODED_WRITE);
  void *data = bytes_arg(&a, 2, &length, USAGE_ENCODED_WRITE);
  struct iovec iov = { .iov_base = length == 0 ? NULL : data, .iov_len = length };
  struct encoded_io_args args = {
    .iov = &iov,
    .iovcnt = 1,
    .offset = int64_arg(&a, 3, USAGE_ENCODED_WRITE),
    .len = (uint64_t)int64_arg(&a, 4, USAGE_ENCODED_WRITE),
    .unencoded_len = (uint64_t)int64_arg(&a, 5, USAGE_ENCODED_WRITE),
    .unencoded_offset = (uint64_t)int64_arg(&a, 6, USAGE_ENCODED_WRITE),
    .compression = (uint32_t)int64_arg(&a, 7, USAGE_ENCODED_WRITE),
    .encryption = (uint32_t)int64_arg(&a, 8, USAGE_ENCODED_WRITE),
  };
  if (!a.ok) return NULL;
  return result(env, ioctl(fd, request, &args));
}

static const struct named_function functions[] = {
  { "openat", call_openat },       { "openat2", call_openat2 },     { "mkdirat", call_mkdirat },
  { "fchmod", call_fchmod },       { "fchmodat2", call_fchmodat2 }, { "utimensat", call_utimensat },
  { "futimens", call_futimens },   { "fstatat", call_fstatat },     { "close", call_close },
  { "pwrite", call_pwrite },       { "encodedWrite", call_encoded_write },
};

NAPI_MODULE_INIT() { return export_functions(env, exports, functions, sizeof functions / sizeof functions[0]); }
