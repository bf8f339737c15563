#ifndef ALPHANET_KDF_H
#define ALPHANET_KDF_H
#include <node_api.h>

/* hkdf(digest: 'blake2b512' | 'sha256', salt, ikm, info, out): see kdf.c. */
napi_value kdf_hkdf(napi_env env, napi_callback_info info);

#endif
