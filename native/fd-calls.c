/* dup(2) and fcntl(2) with an int argument, for reading a pipe (src/stream/byte-reader.ts: the Socket gets
 * a dup of the caller's fd, whose status flags are put back at the end, and the pipe is grown to 1 MiB).
 * Why not koffi: loading it costs ~8 MiB of resident memory, the largest part of what `--dump` from a pipe
 * would otherwise load only for these two calls (src/sys/fd-calls.ts falls back to it). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include "napi-exports.h"

static int int_args(napi_env env, napi_callback_info info, size_t want, int32_t *out) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return 0;
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_int32(env, argv[i], &out[i]) != napi_ok) return 0;
  }
  return 1;
}

static napi_value int_result(napi_env env, int value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

/* dup(fd) → the new fd, or -1. */
static napi_value dup_fd(napi_env env, napi_callback_info info) {
  int32_t args[1];
  if (!int_args(env, info, 1, args)) {
    napi_throw_type_error(env, NULL, "dup(fd): an integer");
    return NULL;
  }
  return int_result(env, dup(args[0]));
}

/* fcntl(fd, cmd, arg) → fcntl's result, or -1. Only commands whose argument is an int. */
static napi_value fcntl_int(napi_env env, napi_callback_info info) {
  int32_t args[3];
  if (!int_args(env, info, 3, args)) {
    napi_throw_type_error(env, NULL, "fcntl(fd, cmd, arg): three integers");
    return NULL;
  }
  return int_result(env, fcntl(args[0], args[1], args[2]));
}

static const struct named_function functions[] = { { "dup", dup_fd }, { "fcntl", fcntl_int } };

NAPI_MODULE_INIT() { return export_functions(env, exports, functions, sizeof functions / sizeof functions[0]); }
