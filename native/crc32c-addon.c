/* Node-API face of native/crc32c.c: `update(crc, bytes)` → the raw CRC32C register after `bytes`.
 * A Node-API call costs ~30 ns against ~140 ns through koffi, and loading it adds ~0.3 MiB instead of
 * koffi's ~6 MiB (the dump does not load koffi otherwise). On a CPU without SSE4.2 and PCLMULQDQ the
 * module exports nothing, and src/stream/crc32c.ts uses @node-rs/crc32. This file is compiled without
 * -msse4.2: only crc32c.c's functions use those instructions, after the check. */
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

int btrfs_ts_crc32c_supported(void);
uint32_t btrfs_ts_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "update(crc, bytes) takes two arguments");
    return NULL;
  }
  uint32_t crc;
  if (napi_get_value_uint32(env, argv[0], &crc) != napi_ok) {
    napi_throw_type_error(env, NULL, "crc must be a number");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, &offset) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "bytes must be a Uint8Array or Buffer");
    return NULL;
  }
  napi_value result;
  napi_create_uint32(env, btrfs_ts_crc32c(crc, (const uint8_t *)data, length), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  if (!btrfs_ts_crc32c_supported()) return exports;
  napi_value fn;
  if (napi_create_function(env, "update", NAPI_AUTO_LENGTH, update, NULL, &fn) == napi_ok) {
    napi_set_named_property(env, exports, "update", fn);
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
