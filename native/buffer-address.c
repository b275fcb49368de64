/* Where a Buffer's bytes sit in memory, modulo a power of two: JS uses it to put the bytes a read(2)
 * fills on a page boundary (src/sys/aligned-buffer.ts). Why: on this machine's CPU the kernel's copy
 * into user memory runs 4-5x slower when the destination is not 64-byte aligned (1 GiB read from the
 * page cache: 0.13 s of system time aligned, 0.55-0.67 s 8 or 16 bytes off; docs/benchmarks.md), and
 * malloc, which backs large Buffers, returns addresses 16 bytes past a page boundary. */
#include <stdint.h>
#include "napi-exports.h"

/* offsetIn(buffer, alignment): the address of buffer's first byte modulo alignment (a power of two). */
static napi_value offset_in(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  void *data = NULL;
  size_t length = 0;
  uint32_t alignment = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_buffer_info(env, argv[0], &data, &length) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &alignment) != napi_ok ||
      alignment == 0 || (alignment & (alignment - 1)) != 0) {
    napi_throw_type_error(env, NULL, "offsetIn(buffer, alignment): a Buffer and a power of two");
    return NULL;
  }
  napi_create_uint32(env, (uint32_t)((uintptr_t)data & (alignment - 1)), &result);
  return result;
}

static const struct named_function functions[] = { { "offsetIn", offset_in } };

NAPI_MODULE_INIT() { return export_functions(env, exports, functions, sizeof functions / sizeof functions[0]); }
