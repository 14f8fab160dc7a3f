/*
 * The small N-API helpers every entry point of the addon uses (datapath.c, relay.c): one home, so
 * that an argument is checked and an error thrown the same way everywhere. Header-only (static
 * inline): each translation unit gets its own copy, nothing is exported.
 */
#ifndef SOFTROCE_NAPI_UTIL_H
#define SOFTROCE_NAPI_UTIL_H

#include <node_api.h>
#include <stdint.h>

static inline napi_value nu_undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* Throw and return NULL, so an entry point can `return nu_throw_type(env, "usage")`. */
static inline napi_value nu_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}
static inline napi_value nu_throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

/* A number that is an unsigned 32-bit integer exactly (no truncation, no wrap of negatives): 1, else 0. */
static inline int nu_get_u32(napi_env env, napi_value v, uint32_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) return 0;
  *out = (uint32_t)d;
  return 1;
}

/* obj[name] = v (a number), for the stats objects. */
static inline void nu_set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

/*
 * The native object behind `this` of a method call, its arguments into argv (*argc: room in, count
 * out). NULL with a TypeError "not a <what>" when `this` wraps nothing.
 */
static inline void *nu_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, const char *what_error) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, what_error);
    return NULL;
  }
  return data;
}

#endif
