/**
 * Types for the CommonJS modules end-to-end encryption uses (they ship none): holepunch's
 * noise-handshake (the handshake state machine, on its default curve, X25519) and the
 * sodium-native functions that turn an identity's Ed25519 seed into its X25519 key pair.
 * Only what e2e/ calls is declared. Beside the code rather than in a types/ folder, so both
 * tsconfig.json and tsconfig.build.json (which include actors/) see it.
 */
declare module 'noise-handshake' {
  /** A Noise key pair as the curve module makes it. */
  export interface NoiseKeyPair {
    publicKey: Uint8Array;
    secretKey: Uint8Array;
  }
  /** A curve module a handshake may run on instead of its default, X25519. */
  export interface NoiseCurve {
    readonly PKLEN: number;
    readonly SKLEN: number;
    readonly ALG: string;
    generateKeyPair(seed?: Uint8Array): NoiseKeyPair;
    dh(publicKey: Uint8Array, keyPair: NoiseKeyPair): Uint8Array;
  }
  /** One end's handshake state (pattern, role, static key pair). */
  export default class NoiseState {
    constructor(pattern: 'IK' | 'XX' | 'XK' | 'NN', initiator: boolean, staticKeyPair?: NoiseKeyPair, options?: { curve?: NoiseCurve; psk?: Uint8Array });
    /** Mixes the prologue and the pre-shared static key (the responder's, for the IK initiator). */
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    /** The next handshake message, with an optional (encrypted where keys allow) payload. */
    send(payload?: Uint8Array): Uint8Array;
    /** Takes the peer's next handshake message; throws if it does not decrypt. Returns its payload. */
    recv(message: Uint8Array): Uint8Array;
    readonly complete: boolean;
    /** After completion: the split's sending and receiving keys (32 bytes each). */
    readonly tx: Uint8Array | null;
    readonly rx: Uint8Array | null;
    /** After completion: the handshake hash (64 bytes, BLAKE2b). */
    readonly hash: Uint8Array | null;
    /** The peer's static public key (the responder learns it from the initiator's first message). */
    readonly rs: Uint8Array | null;
    readonly s: NoiseKeyPair;
  }
}

declare module 'noise-handshake/dh.js' {
  import type { NoiseCurve } from 'noise-handshake';
  /** noise-handshake's default curve, X25519 over libsodium. */
  const x25519: NoiseCurve;
  export default x25519;
}

declare module 'sodium-native' {
  const sodium: {
    crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void;
    crypto_sign_ed25519_pk_to_curve25519(x25519PublicKey: Uint8Array, ed25519PublicKey: Uint8Array): void;
    crypto_sign_ed25519_sk_to_curve25519(x25519SecretKey: Uint8Array, ed25519SecretKey: Uint8Array): void;
    readonly crypto_sign_PUBLICKEYBYTES: number;
    readonly crypto_sign_SECRETKEYBYTES: number;
    readonly crypto_sign_SEEDBYTES: number;
  };
  export default sodium;
}
