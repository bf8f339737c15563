/*
 * AES-GCM records for the e2e layer (actors/client/e2e/sealing.ts), through the OpenSSL that
 * Node.js itself is built with and exports: the same primitive as node:crypto, called so that
 * (1) a direction's key schedule is set up once, not per record, (2) sealing writes into a
 * buffer the caller allocated without zero-filling, and (3) opening decrypts in place. Node 20's
 * Cipher.update() allocates every output twice, zero-fills the second and copies into it, and a
 * Cipheriv object costs ~1.5 µs to make: per 64 KiB record that was about a third of the CPU the
 * encryption costs. No cryptography is written here: only calls into OpenSSL's EVP interface.
 * Arguments are checked here as well as by the caller: a wrong one throws, never reads past a buffer.
 */
#include <node_api.h>
#include "kdf.h"
#include "napi-args.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define TAG_BYTES 16
#define NONCE_BYTES 12
/* What one OpenSSL call takes (an int), with room: a record is at most 16 MiB anyway. */
#define MAX_CALL_BYTES 0x7fffff00u
/* Pieces of one record: a record of 16 MiB in 1-byte pieces, at most. */
#define MAX_PIECES (16u * 1024u * 1024u)

/* Marks the externals this module made, so another module's external is never taken for one. */
static const napi_type_tag CONTEXT_TAG = {0x616c7068616e6574ULL, 0x6165616463747831ULL};

/* A context's box: dispose() frees the context at once and leaves the box for the finalizer. */
typedef struct {
  EVP_CIPHER_CTX* ctx;
} box_t;

static void finalize_box(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  box_t* box = (box_t*)data;
  EVP_CIPHER_CTX_free(box->ctx); /* cleanses the key schedule; NULL is a no-op */
  free(box);
}

static box_t* box_of(napi_env env, napi_value value) {
  void* data = NULL;
  napi_valuetype type;
  bool ours = false;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_check_object_type_tag(env, value, &CONTEXT_TAG, &ours) != napi_ok || !ours) return NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return (box_t*)data;
}

static EVP_CIPHER_CTX* ctx_of(napi_env env, napi_value value) {
  box_t* box = box_of(env, value);
  return box == NULL ? NULL : box->ctx;
}

/* context(key: Uint8Array(16 | 32), encrypt: boolean): external */
static napi_value context(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  unsigned char* key;
  size_t key_len;
  bool encrypt;
  if (!args_of(env, info, 2, argv) || !bytes_of(env, argv[0], &key, &key_len) || napi_get_value_bool(env, argv[1], &encrypt) != napi_ok ||
      (key_len != 16 && key_len != 32))
    return fail(env, "aead: context(key of 16 or 32 bytes, encrypt)");
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const EVP_CIPHER* cipher = key_len == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  if (ctx == NULL || EVP_CipherInit_ex(ctx, cipher, NULL, NULL, NULL, encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) != 1 ||
      EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, encrypt ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return fail(env, "aead: OpenSSL refused the key");
  }
  napi_value result;
  box_t* box = malloc(sizeof(box_t));
  if (box != NULL) box->ctx = ctx;
  if (box == NULL || napi_create_external(env, box, finalize_box, NULL, &result) != napi_ok) {
    EVP_CIPHER_CTX_free(ctx);
    free(box);
    return fail(env, "aead: out of memory");
  }
  if (napi_type_tag_object(env, result, &CONTEXT_TAG) != napi_ok) {
    /* The finalizer owns the box now. */
    return fail(env, "aead: could not mark the context");
  }
  return result;
}

/* Starts a message: the nonce, then the associated data. */
static int start(EVP_CIPHER_CTX* ctx, const unsigned char* nonce, const unsigned char* aad, size_t aad_len, int encrypt) {
  int n;
  if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, encrypt) != 1) return 0;
  return aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1;
}

/* seal(ctx, nonce, aad, plaintext, out): out (plaintext.length + 16 bytes) = ciphertext ‖ tag */
static napi_value seal(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  EVP_CIPHER_CTX* ctx = args_of(env, info, 5, argv) ? ctx_of(env, argv[0]) : NULL;
  unsigned char *nonce, *aad, *plain, *out;
  size_t nonce_len, aad_len, plain_len, out_len;
  if (ctx == NULL || !bytes_of(env, argv[1], &nonce, &nonce_len) || nonce_len != NONCE_BYTES ||
      !bytes_of(env, argv[2], &aad, &aad_len) || !bytes_of(env, argv[3], &plain, &plain_len) ||
      !bytes_of(env, argv[4], &out, &out_len) || out_len != plain_len + TAG_BYTES || plain_len > MAX_CALL_BYTES || aad_len > MAX_CALL_BYTES)
    return fail(env, "aead: seal(ctx, nonce of 12 bytes, aad, plaintext, out of plaintext + 16 bytes)");
  int n = 0, last = 0;
  if (!start(ctx, nonce, aad, aad_len, 1) || (plain_len > 0 && EVP_EncryptUpdate(ctx, out, &n, plain, (int)plain_len) != 1) ||
      EVP_EncryptFinal_ex(ctx, out + n, &last) != 1 || (size_t)(n + last) != plain_len ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out + plain_len) != 1)
    return fail(env, "aead: OpenSSL failed to seal");
  return NULL;
}

/*
 * open(ctx, nonce, aad, pieces: Uint8Array[], tag): boolean. Decrypts the ciphertext pieces in
 * place and checks the tag; false when it does not match (the pieces then hold bytes that must
 * never be used).
 */
static napi_value open_(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  bool is_array = false;
  uint32_t count = 0;
  if (!args_of(env, info, 5, argv) || napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[3], &count) != napi_ok || count > MAX_PIECES)
    return fail(env, "aead: open(ctx, nonce of 12 bytes, aad, pieces (an array), tag of 16 bytes)");
  /* The pieces' values first: taking an element can run JavaScript (a getter), which could
     dispose the context or detach a buffer. No pointer is taken before this loop is done. */
  napi_value* elements = malloc((count == 0 ? 1 : count) * sizeof(napi_value));
  if (elements == NULL) return fail(env, "aead: out of memory");
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, argv[3], i, &elements[i]) != napi_ok) {
      free(elements);
      return fail(env, "aead: a piece could not be read");
    }
  }
  EVP_CIPHER_CTX* ctx = ctx_of(env, argv[0]);
  unsigned char *nonce, *aad, *tag;
  size_t nonce_len, aad_len, tag_len;
  if (ctx == NULL || !bytes_of(env, argv[1], &nonce, &nonce_len) || nonce_len != NONCE_BYTES || !bytes_of(env, argv[2], &aad, &aad_len) ||
      aad_len > MAX_CALL_BYTES || !bytes_of(env, argv[4], &tag, &tag_len) || tag_len != TAG_BYTES) {
    free(elements);
    return fail(env, "aead: open(ctx, nonce of 12 bytes, aad, pieces (an array), tag of 16 bytes)");
  }
  if (!start(ctx, nonce, aad, aad_len, 0)) {
    free(elements);
    return fail(env, "aead: OpenSSL failed to start opening");
  }
  for (uint32_t i = 0; i < count; i++) {
    unsigned char* piece;
    size_t piece_len;
    int n;
    if (!bytes_of(env, elements[i], &piece, &piece_len) || piece_len > MAX_CALL_BYTES) {
      free(elements);
      return fail(env, "aead: a piece is not a Uint8Array");
    }
    if (piece_len > 0 && EVP_DecryptUpdate(ctx, piece, &n, piece, (int)piece_len) != 1) {
      free(elements);
      return fail(env, "aead: OpenSSL failed to decrypt");
    }
  }
  free(elements);
  int last = 0;
  unsigned char scratch[32];
  napi_value result;
  bool ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1 && EVP_DecryptFinal_ex(ctx, scratch, &last) == 1;
  if (napi_get_boolean(env, ok, &result) != napi_ok) return fail(env, "aead: out of memory");
  return result;
}

/* dispose(ctx): frees the context now (the key schedule is cleansed); later uses throw. */
static napi_value dispose(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  box_t* box = args_of(env, info, 1, argv) ? box_of(env, argv[0]) : NULL;
  if (box == NULL)
    return fail(env, "aead: dispose(ctx)");
  EVP_CIPHER_CTX_free(box->ctx);
  box->ctx = NULL;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"context", NULL, context, NULL, NULL, NULL, napi_default, NULL},
      {"seal", NULL, seal, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, open_, NULL, NULL, NULL, napi_default, NULL},
      {"dispose", NULL, dispose, NULL, NULL, NULL, napi_default, NULL},
      {"hkdf", NULL, kdf_hkdf, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}
