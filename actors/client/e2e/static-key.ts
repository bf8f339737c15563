/**
 * The identity's Ed25519 key as a Noise static key pair (docs/SECURITY.md "End-to-end
 * encryption"). noise-curve-ed uses Ed25519 keys directly for Diffie-Hellman (as hyperswarm
 * does), so the key the relay announces (PeerKey, docs/PROTOCOL.md §2a) is the very key the
 * handshake proves; there is no second key to bind to it. libsodium keeps a secret key as the
 * 32-byte seed followed by the public key: the seed is the JWK `d` of our node:crypto key.
 */
import sodium from 'sodium-native';
import type { NoiseKeyPair } from 'noise-handshake';
import { ClientError } from '../errors.ts';
import type { Identity } from '../identity.ts';

const made = new WeakMap<Identity, NoiseKeyPair>();

/** The Noise static key pair of `identity`, made once per identity per process. */
export function staticKeyPair(identity: Identity): NoiseKeyPair {
  let keyPair = made.get(identity);
  if (keyPair === undefined) {
    const d = identity.privateKey.export({ format: 'jwk' }).d;
    if (d === undefined) throw new ClientError('ERR_E2E_HANDSHAKE', 'the identity key has no private part to encrypt end to end with');
    const seed = Buffer.from(d, 'base64url');
    keyPair = { publicKey: Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES), secretKey: Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES) };
    sodium.crypto_sign_seed_keypair(keyPair.publicKey, keyPair.secretKey, seed);
    seed.fill(0);
    // The same seed in libsodium and OpenSSL gives the same key; checked, as a mistake here
    // would make every handshake fail with a misleading "wrong key".
    if (Buffer.compare(Buffer.from(keyPair.publicKey), Buffer.from(identity.publicKey)) !== 0) {
      throw new ClientError('ERR_E2E_HANDSHAKE', 'the identity key gave a different public key in libsodium than in OpenSSL');
    }
    made.set(identity, keyPair);
  }
  return keyPair;
}
