/**
 * The Noise handshake state, with its HKDF (Noise spec §4.3: HKDF over HMAC-BLAKE2b, two or three
 * outputs) done by OpenSSL's HKDF through the native module (native/aead/kdf.c) where it is built.
 * noise-handshake computes it in JavaScript: three HMACs, each two libsodium BLAKE2b calls, scratch
 * buffers and zeroing, ~13 µs a derivation against ~6 natively; a connection's IK handshake makes
 * five at each end (es, ss, ee, se and the split), a sixth of its CPU per connect. Everything else
 * (the pattern, the hashes, the AEAD of the handshake payloads, the DH) stays the library's.
 *
 * The two methods overridden (mixKey, split: all a handshake without a pre-shared key derives
 * with) are the library's internals (noise-handshake 4.2.0): which is why a
 * handshake between this class and the library's own is run once before the first use, and on any
 * difference (another version of the library) the library's class is used as it is.
 */
import Noise, { type NoiseCurve, type NoiseKeyPair } from 'noise-handshake';
import x25519 from 'noise-handshake/dh.js';
import { nativeAead, type NativeAead } from './native-aead.ts';

const HASHLEN = 64;
const EMPTY = new Uint8Array(0);

type Pattern = ConstructorParameters<typeof Noise>[0];
type NoiseOptions = { curve?: NoiseCurve };

/** The library's internals this class overrides or calls (see the module's comment). */
interface NoiseInternals {
  chainingKey: Uint8Array | null;
  curve: NoiseCurve;
  initialiseKey(key: Uint8Array): void;
}

/** `count` outputs of HKDF(chainingKey, ikm), each HASHLEN bytes, in one fresh buffer. */
function hkdf(aead: NativeAead, chainingKey: Uint8Array, ikm: Uint8Array, count: number): Buffer[] {
  // Its own allocation, not the shared pool: the library zeroes chaining keys when it clears.
  const out = Buffer.allocUnsafeSlow(count * HASHLEN);
  aead.hkdf('blake2b512', chainingKey, ikm, EMPTY, out);
  const outputs: Buffer[] = [];
  for (let i = 0; i < count; i++) outputs.push(out.subarray(i * HASHLEN, (i + 1) * HASHLEN));
  return outputs;
}

function nativeNoise(aead: NativeAead): typeof Noise {
  return class NativeHkdfNoise extends Noise {
    mixKey(this: NativeHkdfNoise & NoiseInternals, remoteKey: Uint8Array, localKey: NoiseKeyPair): void {
      const shared = this.curve.dh(remoteKey, localKey);
      const [ck, key] = hkdf(aead, this.chainingKey!, shared, 2);
      // Not kept past its use (the curve hands out a copy even of a cached secret).
      shared.fill(0);
      this.chainingKey = ck!;
      this.initialiseKey(key!.subarray(0, 32));
    }

    split(this: NativeHkdfNoise & NoiseInternals): Uint8Array[] {
      return hkdf(aead, this.chainingKey!, EMPTY, 2).map((key) => key.subarray(0, 32));
    }
  };
}

/** A full IK handshake, `Initiator` against `Responder`: both ends' keys and hash, or a throw. */
function ikHandshake(Initiator: typeof Noise, Responder: typeof Noise): Uint8Array[] {
  const initiatorKeys = x25519.generateKeyPair();
  const responderKeys = x25519.generateKeyPair();
  const initiator = new Initiator('IK', true, initiatorKeys);
  const responder = new Responder('IK', false, responderKeys);
  const prologue = new TextEncoder().encode('noise-state self-test');
  initiator.initialise(prologue, responderKeys.publicKey);
  responder.initialise(prologue);
  responder.recv(initiator.send(new Uint8Array([1, 2, 3])));
  initiator.recv(responder.send(new Uint8Array([4, 5])));
  return [initiator.tx!, initiator.rx!, initiator.hash!, responder.tx!, responder.rx!, responder.hash!];
}

/** Whether `Candidate` and the library's class complete handshakes with each other, with the same keys. */
export function agreesWithLibrary(Candidate: typeof Noise): boolean {
  try {
    for (const [a, b] of [
      [Candidate, Noise],
      [Noise, Candidate],
    ] as const) {
      const keys = ikHandshake(a, b);
      const [itx, irx, ih, rtx, rrx, rh] = keys.map((key) => Buffer.from(key));
      if (!itx!.equals(rrx!) || !irx!.equals(rtx!) || !ih!.equals(rh!)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

let chosen: typeof Noise | undefined;

/** The handshake state class to use: the native-HKDF one when built and in agreement, else the library's. */
export function noiseClass(): typeof Noise {
  if (chosen === undefined) {
    const candidate = nativeNoiseClass();
    chosen = candidate !== undefined && agreesWithLibrary(candidate) ? candidate : Noise;
  }
  return chosen;
}

/** Which HKDF the handshake uses in this process (the specs check it is the native one where built). */
export function noiseHkdfBackend(): 'native' | 'noise-handshake' {
  return noiseClass() === Noise ? 'noise-handshake' : 'native';
}

/** A handshake state (as `new Noise(...)`), with the native HKDF where it is in use. */
export function createNoise(pattern: Pattern, initiator: boolean, staticKeyPair: NoiseKeyPair, options: NoiseOptions): Noise {
  const Class = noiseClass();
  return new Class(pattern, initiator, staticKeyPair, options);
}

/** The native-HKDF class itself, before the check against the library (undefined without the module). */
export function nativeNoiseClass(): typeof Noise | undefined {
  return nativeAead === undefined ? undefined : nativeNoise(nativeAead);
}
