/*
 * HKDF (RFC 5869) for the e2e handshake, through OpenSSL's own HKDF (EVP_KDF "HKDF"): Noise's
 * HKDF over HMAC-BLAKE2b (actors/client/e2e/noise-state.ts) and the transport keys' HKDF-SHA256
 * (sealing.ts). The same function node:crypto's hkdfSync calls, without what surrounds it there:
 * a secret KeyObject per call, and OpenSSL fetching the digest by name per call. In JavaScript
 * (noise-handshake's hkdf.js, three HMACs of two BLAKE2b calls each) one derivation cost ~13 µs,
 * hkdfSync ~14 µs; here ~4.5 µs, and a connection's handshake makes five at each end.
 * No cryptography is written here: OpenSSL does the HMACs and the expansion.
 */
#include "kdf.h"
#include "napi-args.h"
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5869: at most 255 blocks of the digest's output. */
#define MAX_OUT_BYTES (255u * 64u)
#define MAX_IN_BYTES 0x100000u

/* OpenSSL's HKDF, fetched once per environment (a worker thread has its own). */
static void finalize_kdf(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  EVP_KDF_free((EVP_KDF*)data);
}

static EVP_KDF* hkdf_of(napi_env env) {
  EVP_KDF* kdf = NULL;
  if (napi_get_instance_data(env, (void**)&kdf) != napi_ok) return NULL;
  if (kdf != NULL) return kdf;
  kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  if (kdf != NULL && napi_set_instance_data(env, kdf, finalize_kdf, NULL) != napi_ok) {
    EVP_KDF_free(kdf);
    return NULL;
  }
  return kdf;
}

/*
 * hkdf(digest: 'blake2b512' | 'sha256', salt, ikm, info, out): fills `out` with HKDF-Expand(
 * HKDF-Extract(salt, ikm), info, out.length). A fresh context per call: OpenSSL 3.0 keeps a
 * context's last salt and info when a call gives empty ones, and one call's secrets must never
 * be another's.
 */
napi_value kdf_hkdf(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char name[16];
  size_t name_len = 0;
  unsigned char *salt, *ikm, *label, *out;
  size_t salt_len, ikm_len, label_len, out_len;
  if (!args_of(env, info, 5, argv) || napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &name_len) != napi_ok ||
      !bytes_of(env, argv[1], &salt, &salt_len) || !bytes_of(env, argv[2], &ikm, &ikm_len) || !bytes_of(env, argv[3], &label, &label_len) ||
      !bytes_of(env, argv[4], &out, &out_len) || salt_len > MAX_IN_BYTES || ikm_len > MAX_IN_BYTES || label_len > 1024 || out_len == 0 ||
      out_len > MAX_OUT_BYTES)
    return fail(env, "aead: hkdf('blake2b512' | 'sha256', salt, ikm, info, out of 1 to 16320 bytes)");
  const char* digest = strcmp(name, "blake2b512") == 0 ? "BLAKE2B-512" : strcmp(name, "sha256") == 0 ? "SHA2-256" : NULL;
  if (digest == NULL) return fail(env, "aead: hkdf: the digest is 'blake2b512' or 'sha256'");
  if (strcmp(name, "sha256") == 0 && out_len > 255u * 32u) return fail(env, "aead: hkdf: out of at most 8160 bytes with sha256");
  EVP_KDF* kdf = hkdf_of(env);
  EVP_KDF_CTX* ctx = kdf == NULL ? NULL : EVP_KDF_CTX_new(kdf);
  if (ctx == NULL) return fail(env, "aead: OpenSSL has no HKDF");
  /* The key is always given (HKDF needs one, even empty); salt and info only when not empty, as
     OpenSSL reads an empty one as absent: RFC 5869's defaults, which are the same values. A
     zero-length array may have no storage, hence `nothing`. */
  static unsigned char nothing[1];
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char*)digest, 0);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm_len == 0 ? nothing : ikm, ikm_len);
  if (salt_len > 0) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, salt_len);
  if (label_len > 0) params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, label, label_len);
  params[n] = OSSL_PARAM_construct_end();
  int ok = EVP_KDF_derive(ctx, out, out_len, params);
  EVP_KDF_CTX_free(ctx); /* cleanses the key and salt */
  if (ok != 1) return fail(env, "aead: OpenSSL failed to derive");
  return NULL;
}
