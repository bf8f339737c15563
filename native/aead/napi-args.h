/* Argument helpers shared by the module's files: a wrong argument throws, never reads past a buffer. */
#ifndef ALPHANET_NAPI_ARGS_H
#define ALPHANET_NAPI_ARGS_H
#include <node_api.h>
#include <openssl/err.h>
#include <stddef.h>

/*
 * Throws ERR_AEAD_NATIVE with `message`; returns NULL for the caller to return. What OpenSSL
 * queued on this thread's error queue for the failed call is cleared: node:crypto reads that
 * queue after its own calls and would take our stale errors for its own.
 */
static inline napi_value fail(napi_env env, const char* message) {
  ERR_clear_error();
  napi_throw_error(env, "ERR_AEAD_NATIVE", message);
  return NULL;
}

/* Exactly `want` arguments into argv. */
static inline int args_of(napi_env env, napi_callback_info info, size_t want, napi_value* argv) {
  size_t argc = want;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc == want;
}

/* A Uint8Array's bytes (no other typed array: its length would not be in bytes). */
static inline int bytes_of(napi_env env, napi_value value, unsigned char** data, size_t* length) {
  napi_typedarray_type type;
  size_t n;
  void* p;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &n, &p, &ab, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (unsigned char*)p;
  *length = n;
  return 1;
}

#endif
