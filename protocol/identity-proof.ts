/**
 * What an IdentityProof signs and how it is checked (docs/PROTOCOL.md §2a): Ed25519 over the
 * context string followed by the relay's challenge, with Node's crypto (OpenSSL). Both the relay
 * (verifying) and the client (signing) use these, so the two cannot disagree on the bytes.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { CHALLENGE_BYTES, IDENTITY_PROOF_CONTEXT, PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from './constants.ts';

const CONTEXT_BYTES = new TextEncoder().encode(IDENTITY_PROOF_CONTEXT);

/** The bytes an IdentityProof signs: the context string ‖ the 32-byte challenge. */
export function identityProofMessage(challenge: Uint8Array): Uint8Array {
  const message = new Uint8Array(CONTEXT_BYTES.length + challenge.length);
  message.set(CONTEXT_BYTES, 0);
  message.set(challenge, CONTEXT_BYTES.length);
  return message;
}

/** A raw 32-byte Ed25519 public key as a KeyObject; throws on a point that is not a key. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_BYTES) throw new RangeError(`an Ed25519 public key is ${PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/**
 * Why the proof fails, or undefined when `signature` is `publicKey`'s Ed25519 signature over
 * {@link identityProofMessage}(`challenge`).
 */
export function checkIdentityProof(publicKey: Uint8Array, signature: Uint8Array, challenge: Uint8Array): string | undefined {
  if (challenge.length !== CHALLENGE_BYTES || signature.length !== SIGNATURE_BYTES) return 'malformed proof';
  let key: KeyObject;
  try {
    key = ed25519PublicKey(publicKey);
  } catch {
    return 'the public key is not an Ed25519 key';
  }
  let ok = false;
  try {
    ok = verify(null, identityProofMessage(challenge), key, signature);
  } catch {
    ok = false;
  }
  return ok ? undefined : 'the signature over the challenge does not verify with the public key';
}

/** A key as the text users see and stores keep: unpadded base64url of the 32 raw bytes. */
export function formatPublicKey(raw: Uint8Array): string {
  return Buffer.from(raw).toString('base64url');
}
