/**
 * The handshake's HKDF in native code (native/aead/kdf.c, actors/client/e2e/noise-state.ts): it
 * derives exactly what noise-handshake's JavaScript HKDF and node:crypto's hkdfSync derive, calls
 * do not leak into each other (salt, info), bad arguments throw, and a handshake state using it
 * completes IK handshakes with the library's own, both ways, with the same keys; a state that
 * derives anything else is found out before use.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import Noise from 'noise-handshake';
import t from 'tap';
import { aeadBackend, nativeAead, type NativeAead } from '../../actors/client/e2e/native-aead.ts';
import { agreesWithLibrary, createNoise, nativeNoiseClass, noiseHkdfBackend } from '../../actors/client/e2e/noise-state.ts';
import { transportKeys } from '../../actors/client/e2e/sealing.ts';
import { curveFor, staticKeyPair } from '../../actors/client/e2e/static-key.ts';
import { generateIdentity } from '../../actors/client/index.ts';

// The library's own HKDF, the reference (CommonJS, no types).
const libraryHkdf = (createRequire(import.meta.url)('noise-handshake/hkdf.js') as { hkdf(salt: Uint8Array, ikm: Uint8Array, info?: string, length?: number): Buffer[] }).hkdf;
const EMPTY = new Uint8Array(0);

function native(): NativeAead {
  if (nativeAead === undefined) throw new Error(`the native module is not loaded (${aeadBackend().detail}): npm ci builds it`);
  return nativeAead;
}

t.test('the native module is built, and the handshake uses its HKDF', async (t) => {
  t.equal(aeadBackend().name, 'native', aeadBackend().detail);
  t.equal(noiseHkdfBackend(), 'native');
});

t.test("HKDF-BLAKE2b is noise-handshake's, for every input shape a handshake gives it", async (t) => {
  const aead = native();
  let compared = 0;
  for (let i = 0; i < 300; i++) {
    const chainingKey = randomBytes(64);
    // Empty input keying material is the split's; 32 bytes a DH's; others for good measure.
    const ikm = randomBytes([0, 32, 64, 1, 129][i % 5]!);
    const outputs = 2 + (i % 2);
    const out = Buffer.alloc(outputs * 64);
    aead.hkdf('blake2b512', chainingKey, ikm, EMPTY, out);
    const want = Buffer.concat(libraryHkdf(chainingKey, ikm, '', outputs * 64));
    if (!out.equals(want)) t.fail(`input ${i}: ${ikm.length}-byte ikm, ${outputs} outputs differ`);
    else compared++;
  }
  t.equal(compared, 300, 'all 300 derivations equal');
});

t.test("HKDF-SHA256 is node:crypto's, and no call's salt or info carries into the next", async (t) => {
  const aead = native();
  const ikm = randomBytes(64);
  const cases: Array<[Uint8Array, string]> = [
    [randomBytes(64), 'alphanet-e2e/1 AES-256-GCM'],
    [EMPTY, 'label'],
    [randomBytes(32), ''],
    [EMPTY, ''],
    [randomBytes(17), 'another label'],
  ];
  // Each case after every other: an empty salt or info after a non-empty one is the case a reused
  // OpenSSL context would get wrong (it keeps the last one).
  for (const [salt, info] of [...cases, ...cases.slice().reverse(), ...cases]) {
    const out = Buffer.alloc(64);
    aead.hkdf('sha256', salt, ikm, new TextEncoder().encode(info), out);
    t.same(out, Buffer.from(hkdfSync('sha256', ikm, salt, info, 64)), `salt of ${salt.length} bytes, info '${info}'`);
  }
});

t.test("the transport keys are the ones node:crypto's HKDF gives (as an end without the module derives them)", async (t) => {
  const [tx, rx, hash] = [randomBytes(32), randomBytes(32), randomBytes(64)];
  const okm = Buffer.from(hkdfSync('sha256', Buffer.concat([tx, rx]), hash, 'alphanet-e2e/1 AES-256-GCM', 64));
  const initiator = transportKeys(tx, rx, hash, true);
  const responder = transportKeys(rx, tx, hash, false);
  t.same(initiator.send, okm.subarray(0, 32));
  t.same(initiator.receive, okm.subarray(32));
  t.same(responder.receive, initiator.send);
  t.same(responder.send, initiator.receive);
});

t.test('bad arguments throw a clear error, never read past a buffer', async (t) => {
  const aead = native();
  const b = (n: number) => new Uint8Array(n);
  const calls: Array<[string, () => void]> = [
    ['an unknown digest', () => aead.hkdf('md5' as 'sha256', b(8), b(8), EMPTY, b(8))],
    ['an empty output', () => aead.hkdf('sha256', b(8), b(8), EMPTY, b(0))],
    ['more output than HKDF-SHA256 gives', () => aead.hkdf('sha256', b(8), b(8), EMPTY, b(255 * 32 + 1))],
    ['more output than HKDF-BLAKE2b gives', () => aead.hkdf('blake2b512', b(8), b(8), EMPTY, b(255 * 64 + 1))],
    ['a string for bytes', () => aead.hkdf('sha256', b(8), 'ikm' as unknown as Uint8Array, EMPTY, b(8))],
    ['another typed array', () => aead.hkdf('sha256', new Uint16Array(4) as unknown as Uint8Array, b(8), EMPTY, b(8))],
    ['too few arguments', () => (aead.hkdf as unknown as (...args: unknown[]) => void)('sha256', b(8), b(8), EMPTY)],
  ];
  for (const [what, call] of calls) t.throws(call, { code: 'ERR_AEAD_NATIVE' }, what);
  const out = Buffer.alloc(255 * 64);
  aead.hkdf('blake2b512', b(8), b(8), EMPTY, out);
  t.ok(out.some((byte) => byte !== 0), 'the most HKDF gives is given');
});

t.test("a handshake state with the native HKDF completes IK with the library's, both ways, on the same keys", async (t) => {
  const Native = nativeNoiseClass();
  if (Native === undefined) throw new Error('the native module is not loaded');
  for (const [Initiator, Responder, what] of [
    [Native, Noise, 'native initiator, library responder'],
    [Noise, Native, 'library initiator, native responder'],
    [Native, Native, 'both native'],
  ] as const) {
    // The identities' X25519 keys and the cached static-static curve, as handshake.ts runs it.
    const [a, b] = [staticKeyPair(generateIdentity()), staticKeyPair(generateIdentity())];
    const initiator = new Initiator('IK', true, a, { curve: curveFor(a, b.publicKey) });
    const responder = new Responder('IK', false, b);
    const prologue = new TextEncoder().encode(`alphanet-e2e/1\n10.0.0.1:5\n10.0.0.2:6\n`);
    initiator.initialise(prologue, b.publicKey);
    responder.initialise(prologue);
    t.same(Buffer.from(responder.recv(initiator.send(Buffer.from('hello')))), Buffer.from('hello'), `${what}: the first payload opens`);
    t.same(Buffer.from(initiator.recv(responder.send(Buffer.from('back')))), Buffer.from('back'), `${what}: the reply opens`);
    t.ok(initiator.complete && responder.complete, `${what}: both complete`);
    t.same(Buffer.from(initiator.tx!), Buffer.from(responder.rx!), `${what}: one direction's key`);
    t.same(Buffer.from(initiator.rx!), Buffer.from(responder.tx!), `${what}: the other's`);
    t.same(Buffer.from(initiator.hash!), Buffer.from(responder.hash!), `${what}: one handshake hash`);
    t.same(Buffer.from(responder.rs!), Buffer.from(a.publicKey), `${what}: the responder learnt the initiator's key`);
  }
});

t.test('a handshake message altered on the way is refused by the native state', async (t) => {
  const [a, b] = [staticKeyPair(generateIdentity()), staticKeyPair(generateIdentity())];
  const initiator = createNoise('IK', true, a, { curve: curveFor(a, b.publicKey) });
  const responder = createNoise('IK', false, b, {});
  const prologue = new TextEncoder().encode('p');
  initiator.initialise(prologue, b.publicKey);
  responder.initialise(prologue);
  const first = Buffer.from(initiator.send(Buffer.from('x')));
  first[first.length - 1]! ^= 1;
  t.throws(() => responder.recv(first), 'a flipped bit in the first message');
});

t.test('a state that derives anything else is not taken in place of the library', async (t) => {
  const Native = nativeNoiseClass();
  if (Native === undefined) throw new Error('the native module is not loaded');
  t.equal(agreesWithLibrary(Native), true, 'the native state agrees');
  // Splitting with the keys swapped completes the handshake locally but never talks to the library.
  const nativeSplit = (Native.prototype as unknown as { split(): Uint8Array[] }).split;
  class Swapped extends Native {
    split(): Uint8Array[] {
      return nativeSplit.call(this).reverse();
    }
  }
  t.equal(agreesWithLibrary(Swapped as typeof Noise), false, 'swapped split keys are found out');
  class Broken extends Native {
    mixKey(): void {
      throw new Error('broken');
    }
  }
  t.equal(agreesWithLibrary(Broken as typeof Noise), false, 'a throwing state is found out');
});
