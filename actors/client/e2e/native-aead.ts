/**
 * The native AES-GCM records and HKDF (native/aead): OpenSSL's EVP interface, the library node:crypto
 * wraps, called with a key schedule kept per direction, sealing into a buffer allocated without
 * zero-filling and opening in place. The records are byte for byte those of node:crypto, so an
 * end with it and an end without talk alike; sealing.ts uses it when it was built (`npm ci` builds
 * it with node-gyp), node:crypto otherwise, or when ALPHANET_AEAD=node says so.
 */
import { hkdfSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A direction's cipher context in native memory (OpenSSL cleanses it when freed). */
export type NativeContext = object & { readonly __nativeAeadContext: unique symbol };

export interface NativeAead {
  /** A context for `key` (16 or 32 bytes: AES-128-GCM or AES-256-GCM), sealing or opening. */
  context(key: Uint8Array, encrypt: boolean): NativeContext;
  /** Frees a context now (its key schedule is cleansed); later calls with it throw. */
  dispose(context: NativeContext): void;
  /** Writes the ciphertext of `plaintext` and then its 16-byte tag into `out` (plaintext + 16 bytes). */
  seal(context: NativeContext, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void;
  /**
   * Decrypts the ciphertext `pieces` in place and checks `tag`: false when it does not match, and
   * the pieces then hold bytes that must not be used.
   */
  open(context: NativeContext, nonce: Uint8Array, aad: Uint8Array, pieces: readonly Uint8Array[], tag: Uint8Array): boolean;
  /**
   * HKDF (RFC 5869, OpenSSL's) of `ikm` with `salt` and `info` into all of `out` (native/aead/kdf.c):
   * the handshake's (noise-state.ts) and the transport keys' (sealing.ts).
   */
  hkdf(digest: 'blake2b512' | 'sha256', salt: Uint8Array, ikm: Uint8Array, info: Uint8Array, out: Uint8Array): void;
}

/** Where the built module lies: beside the sources, or one level up when run from dist/. */
const CANDIDATES = ['../../../native/aead/build/Release/aead.node', '../../../../native/aead/build/Release/aead.node'];

function load(): { aead: NativeAead | undefined; why: string } {
  if (process.env.ALPHANET_AEAD === 'node') return { aead: undefined, why: 'ALPHANET_AEAD=node' };
  // The module calls the OpenSSL that Node.js exports; another runtime (Deno) may load it and
  // lack those functions. Linked with -z now it fails to load there; this says why first.
  if ('Deno' in globalThis || process.versions.openssl === undefined) return { aead: undefined, why: 'this runtime does not export OpenSSL to native modules' };
  const require = createRequire(import.meta.url);
  for (const candidate of CANDIDATES) {
    const file = fileURLToPath(new URL(candidate, import.meta.url));
    if (!existsSync(file)) continue;
    let module: Partial<NativeAead>;
    try {
      module = require(file) as Partial<NativeAead>;
    } catch (error) {
      return { aead: undefined, why: `${file} did not load: ${(error as Error).message}` };
    }
    const wrong = checkModule(module);
    if (wrong !== undefined) {
      // A build from before a change (a checkout updated without `npm ci`): said once, loudly,
      // since everything falls back to node:crypto until it is rebuilt.
      const why = `${file} is out of date (${wrong}): rebuild it with \`node native/aead/build.mjs\` (npm ci does)`;
      process.emitWarning(`alphanet: ${why}; end-to-end encryption uses node:crypto meanwhile`, { code: 'ALPHANET_NATIVE_AEAD_STALE' });
      return { aead: undefined, why };
    }
    return { aead: module as NativeAead, why: file };
  }
  return { aead: undefined, why: 'native/aead was not built (npm ci builds it; node native/aead/build.mjs does by hand)' };
}

const FUNCTIONS = ['context', 'dispose', 'seal', 'open', 'hkdf'] as const;

/**
 * Why `module` is not the module these sources expect (a function missing, or an HKDF that does
 * not give node:crypto's answer: each end must derive the keys the other does), or undefined.
 */
export function checkModule(module: Partial<NativeAead>): string | undefined {
  const missing = FUNCTIONS.filter((name) => typeof module[name] !== 'function');
  if (missing.length > 0) return `it has no ${missing.join(', ')}`;
  const salt = new Uint8Array(64).fill(7);
  const ikm = new Uint8Array(32).fill(9);
  const info = new TextEncoder().encode('alphanet native check');
  for (const digest of ['sha256', 'blake2b512'] as const) {
    const out = new Uint8Array(64);
    try {
      module.hkdf!(digest, salt, ikm, info, out);
    } catch (error) {
      return `its ${digest} HKDF threw: ${(error as Error).message}`;
    }
    if (!Buffer.from(out).equals(Buffer.from(hkdfSync(digest, ikm, salt, info, 64)))) return `its ${digest} HKDF differs from node:crypto's`;
  }
  return undefined;
}

const loaded = load();

/** The native module, or undefined when node:crypto does the work. */
export const nativeAead: NativeAead | undefined = loaded.aead;

/** Which implementation seals and opens records in this process, and why, for logs and the bench. */
export function aeadBackend(): { name: 'native' | 'node:crypto'; detail: string } {
  return loaded.aead ? { name: 'native', detail: `OpenSSL EVP via ${loaded.why}` } : { name: 'node:crypto', detail: loaded.why };
}
