/**
 * The identity's Ed25519 key as a Noise static key (docs/SECURITY.md "End-to-end encryption"):
 * its X25519 form, by libsodium's birational map (crypto_sign_ed25519_sk_to_curve25519 and
 * _pk_to_curve25519), so the handshake runs on noise-handshake's own curve, X25519. The map is
 * deterministic and public: the X25519 key a peer proves in the handshake is compared with the
 * map of the Ed25519 key the relay announced (PeerKey, docs/PROTOCOL.md §2a), and only the holder
 * of that Ed25519 secret key holds the X25519 one.
 *
 * Why not Ed25519 keys used directly for Diffie-Hellman (noise-curve-ed, as hyperswarm does): a
 * whole IK handshake, both ends, measured 0.76 ms there against 0.46 ms on X25519 (libsodium's
 * scalar multiplication on the Edwards curve costs twice the Montgomery ladder), and the
 * handshake is most of an encrypted connect's CPU (issue 12's "≥ 1,000 handshakes/s").
 */
import sodium from 'sodium-native';
import type { NoiseCurve, NoiseKeyPair } from 'noise-handshake';
import x25519 from 'noise-handshake/dh.js';
import { ClientError } from '../errors.ts';
import type { Identity } from '../identity.ts';

const X25519_BYTES = 32;
/** Peers' converted keys kept (a conversion costs about as much as a Diffie-Hellman). */
const PEER_KEYS_KEPT = 4096;

const made = new WeakMap<Identity, NoiseKeyPair>();
const peers = new Map<string, Uint8Array>();
/** Static-static secrets (IK's ss) per own key pair, by the peer's static key. */
const staticSecrets = new WeakMap<NoiseKeyPair, Map<string, Uint8Array>>();

/** The Noise static key pair (X25519) of `identity`, made once per identity per process. */
export function staticKeyPair(identity: Identity): NoiseKeyPair {
  let keyPair = made.get(identity);
  if (keyPair === undefined) {
    const d = identity.privateKey.export({ format: 'jwk' }).d;
    if (d === undefined) throw new ClientError('ERR_E2E_HANDSHAKE', 'the identity key has no private part to encrypt end to end with');
    // libsodium keeps an Ed25519 secret key as the 32-byte seed and the public key: the seed is
    // the JWK `d` of our node:crypto key.
    const seed = Buffer.from(d, 'base64url');
    const edPublic = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
    const edSecret = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
    sodium.crypto_sign_seed_keypair(edPublic, edSecret, seed);
    seed.fill(0);
    // The same seed in libsodium and OpenSSL gives the same key; checked, as a mistake here
    // would make every handshake fail with a misleading "wrong key".
    if (Buffer.compare(edPublic, Buffer.from(identity.publicKey)) !== 0) {
      edSecret.fill(0);
      throw new ClientError('ERR_E2E_HANDSHAKE', 'the identity key gave a different public key in libsodium than in OpenSSL');
    }
    keyPair = { publicKey: Buffer.alloc(X25519_BYTES), secretKey: Buffer.alloc(X25519_BYTES) };
    sodium.crypto_sign_ed25519_sk_to_curve25519(keyPair.secretKey, edSecret);
    sodium.crypto_sign_ed25519_pk_to_curve25519(keyPair.publicKey, edPublic);
    edSecret.fill(0);
    made.set(identity, keyPair);
  }
  return keyPair;
}

/**
 * The X25519 form of a peer's Ed25519 identity key (as the relay announced it). Throws
 * ERR_E2E_PEER_KEY for bytes that are not a valid Ed25519 point (the relay checked the key's
 * signature at Hello, so only a relay in the middle could announce one).
 */
export function peerStaticKey(edPublicKey: Uint8Array): Uint8Array {
  const id = Buffer.from(edPublicKey).toString('base64url');
  let key = peers.get(id);
  if (key === undefined) {
    key = Buffer.alloc(X25519_BYTES);
    try {
      sodium.crypto_sign_ed25519_pk_to_curve25519(key, edPublicKey);
    } catch (error) {
      throw new ClientError('ERR_E2E_PEER_KEY', `the relay announced ${id}, which is not an Ed25519 public key: refused`, { cause: error });
    }
    // Bounded: a long-running client meeting many peers forgets the oldest conversions.
    if (peers.size >= PEER_KEYS_KEPT) peers.delete(peers.keys().next().value!);
    peers.set(id, key);
  }
  return key;
}

/**
 * X25519 for one handshake between `local` and the peer static key `peer`, the static-static
 * Diffie-Hellman (IK's ss) kept per pair of keys: it is the same on every connection between two
 * identities, and computing it is a quarter of a handshake's Diffie-Hellman. Keeping it in memory
 * exposes nothing the static secret key beside it does not; the ephemeral ones (ee, es, se) that
 * give forward secrecy are computed afresh every time.
 */
export function curveFor(local: NoiseKeyPair, peer: Uint8Array): NoiseCurve {
  return {
    PKLEN: x25519.PKLEN,
    SKLEN: x25519.SKLEN,
    ALG: x25519.ALG,
    generateKeyPair: x25519.generateKeyPair,
    dh(publicKey: Uint8Array, keyPair: NoiseKeyPair): Uint8Array {
      if (keyPair !== local || Buffer.compare(Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength), Buffer.from(peer.buffer, peer.byteOffset, peer.byteLength)) !== 0) {
        return x25519.dh(publicKey, keyPair);
      }
      let secrets = staticSecrets.get(local);
      if (secrets === undefined) staticSecrets.set(local, (secrets = new Map()));
      const id = Buffer.from(peer).toString('base64url');
      let secret = secrets.get(id);
      if (secret === undefined) {
        secret = x25519.dh(publicKey, keyPair);
        if (secrets.size >= PEER_KEYS_KEPT) secrets.delete(secrets.keys().next().value!);
        secrets.set(id, secret);
      }
      // A copy: the handshake may wipe what it is given.
      return Buffer.from(secret);
    },
  };
}
