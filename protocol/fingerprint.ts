/**
 * How a relay's TLS identity is written: `sha256:` and the SHA-256 of its certificate's public
 * key (the DER SubjectPublicKeyInfo) as 32 colon-separated upper-case hex pairs. The relay prints
 * it beside `listening on`, the client pins it in its known-relays file and `--relay-fingerprint`
 * takes it back. The public key, not the whole certificate: like an ssh host key, a certificate
 * renewed with the same key keeps its fingerprint. Pure text, no crypto: each side hashes.
 */

/** What a fingerprint starts with: the hash it is made with. */
export const FINGERPRINT_PREFIX = 'sha256:';
/** Bytes of a SHA-256 digest. */
export const FINGERPRINT_DIGEST_BYTES = 32;

/** `sha256:AB:CD:…` of a 32-byte digest. */
export function formatFingerprint(digest: Uint8Array): string {
  if (digest.length !== FINGERPRINT_DIGEST_BYTES) throw new RangeError(`a SHA-256 digest is ${FINGERPRINT_DIGEST_BYTES} bytes, got ${digest.length}`);
  const pairs: string[] = [];
  for (const byte of digest) pairs.push(byte.toString(16).padStart(2, '0').toUpperCase());
  return FINGERPRINT_PREFIX + pairs.join(':');
}

/**
 * The canonical form of a fingerprint a person typed or pasted: the `sha256:` prefix optional,
 * any case, colons optional. Undefined when it is not 32 bytes of hex.
 */
export function parseFingerprint(text: string): string | undefined {
  let value = text.trim();
  if (value.toLowerCase().startsWith(FINGERPRINT_PREFIX)) value = value.slice(FINGERPRINT_PREFIX.length);
  const hex = value.replace(/:/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return undefined;
  return FINGERPRINT_PREFIX + hex.toUpperCase().match(/../g)!.join(':');
}
