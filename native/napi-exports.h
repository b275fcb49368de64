/* Shared by our Node-API modules: export a table of functions under their names. */
#ifndef BTRFS_TS_NAPI_EXPORTS_H
#define BTRFS_TS_NAPI_EXPORTS_H
#include <node_api.h>
#include <stddef.h>

struct named_function {
  const char *name;
  napi_callback fn;
};

static inline napi_value export_functions(napi_env env, napi_value exports, const struct named_function *table, size_t count) {
  for (size_t i = 0; i < count; i++) {
    napi_value fn;
    if (napi_create_function(env, table[i].name, NAPI_AUTO_LENGTH, table[i].fn, NULL, &fn) == napi_ok) {
      napi_set_named_property(env, exports, table[i].name, fn);
    }
  }
  return exports;
}

#endif
