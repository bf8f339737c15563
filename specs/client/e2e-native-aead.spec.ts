/**
 * The native AES-GCM records (native/aead, actors/client/e2e/native-aead.ts) against node:crypto:
 * `npm ci` builds the module; its records are byte for byte node:crypto's, each opens the other's
 * however the bytes were cut, a changed byte fails either, bad arguments throw instead of reading
 * past a buffer, and a native end and a node:crypto end (ALPHANET_AEAD=node) exchange data over
 * a real relay.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { aeadBackend, checkModule, nativeAead, type NativeAead } from '../../actors/client/e2e/native-aead.ts';
import { RecordReader, RecordType, type RawRecord } from '../../actors/client/e2e/records.ts';
import { Opener, SealError, Sealer, transportKeys } from '../../actors/client/e2e/sealing.ts';
import { generateIdentity } from '../../actors/client/index.ts';
import { start } from '../helpers/child-process.ts';
import { clientFor, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

const CHILD = fileURLToPath(new URL('./e2e-native-aead.child.ts', import.meta.url));
const SIZES = [0, 1, 15, 16, 17, 1000, 4096, 65_535, 65_536];

function key(): Buffer {
  return transportKeys(randomBytes(32), randomBytes(32), randomBytes(64), true).send;
}

/** The native module, which these specs need: `npm ci` builds it. */
function native(t: Test): NativeAead {
  if (nativeAead === undefined) {
    t.fail(`the native AEAD is not loaded (${aeadBackend().detail}): npm ci builds it, or node native/aead/build.mjs`);
    throw new Error('no native AEAD');
  }
  return nativeAead;
}

/** `records` cut into chunks at `cuts` (offsets into their concatenation), read back as records. */
function recut(records: readonly Uint8Array[], cuts: readonly number[]): RawRecord[] {
  const stream = Buffer.concat(records);
  const reader = new RecordReader();
  let at = 0;
  for (const cut of [...cuts, stream.length]) {
    reader.push(Buffer.from(stream.subarray(at, cut)));
    at = cut;
  }
  const out: RawRecord[] = [];
  for (let record = reader.next(); record !== undefined; record = reader.next()) out.push(record);
  return out;
}

t.test('npm ci built the native module and records are sealed and opened with it', async (t) => {
  if (process.env.ALPHANET_AEAD === 'node') {
    t.equal(aeadBackend().name, 'node:crypto', 'ALPHANET_AEAD=node chooses node:crypto');
    return;
  }
  native(t);
  t.equal(aeadBackend().name, 'native');
});

t.test('the native records are node:crypto\'s, byte for byte, and each opens the other\'s however the stream was cut', async (t) => {
  const aead = native(t);
  for (const [from, to] of [
    [aead, undefined],
    [undefined, aead],
  ] as const) {
    const k = key();
    const nativeSealer = new Sealer(Buffer.from(k), 3, aead);
    const nodeSealer = new Sealer(Buffer.from(k), 3, undefined);
    const sealer = new Sealer(Buffer.from(k), 3, from);
    const opener = new Opener(Buffer.from(k), 3, to);
    // Rekeyed every 3 messages (as both ends would), so the key changes several times here.
    const plain = SIZES.map((n, i) => pseudoRandom(i + 1, n));
    const records = plain.map((p, i) => {
      const type = i === 0 ? RecordType.End : RecordType.Data;
      const a = Buffer.concat(nativeSealer.sealPieces(type, p));
      const b = Buffer.concat(nodeSealer.sealPieces(type, p));
      if (!a.equals(b)) t.fail(`record ${i}: the native and node:crypto records differ`);
      return Buffer.concat(sealer.sealPieces(type, p));
    });
    const total = records.reduce((sum, r) => sum + r.length, 0);
    // Cut every 7 bytes: heads, ciphertexts and tags all split across chunks.
    const cuts = Array.from({ length: Math.floor((total - 1) / 7) }, (_, i) => (i + 1) * 7);
    const opened = recut(records, cuts).map((r) => Buffer.concat(opener.open(r.head, r.pieces)));
    t.same(
      opened.map((o) => o.length),
      SIZES,
      `${from ? 'native' : 'node:crypto'} sealed, ${to ? 'native' : 'node:crypto'} opened: every record, in order`,
    );
    t.ok(
      opened.every((o, i) => o.equals(plain[i])),
      'to the bytes sealed',
    );
  }
});

t.test('a native opener refuses any changed byte (head, ciphertext or tag), a replay and a reorder', async (t) => {
  const aead = native(t);
  const k = key();
  const sealer = new Sealer(Buffer.from(k), undefined, aead);
  const records = [0, 1, 2].map((i) => Buffer.concat(sealer.sealPieces(RecordType.Data, pseudoRandom(10 + i, 300))));
  const opens = (sequence: readonly Buffer[]): boolean => {
    const opener = new Opener(Buffer.from(k), undefined, aead);
    try {
      const cut = recut(sequence.map((s) => Buffer.from(s)), []);
      for (const r of cut) opener.open(r.head, r.pieces);
      // A changed length cuts the bytes into other records (or too few): not what was sent.
      return cut.length === sequence.length;
    } catch (error) {
      if (!(error instanceof SealError)) throw error;
      return false;
    }
  };
  t.ok(opens(records), 'as sealed, they open');
  for (const at of [1, 3, 4, 150, records[0].length - 16, records[0].length - 1]) {
    const changed = Buffer.from(records[0]);
    changed[at] ^= 0x01;
    // A changed length in the head may no longer cut as a record: refused either way.
    let refused: boolean;
    try {
      refused = !opens([changed]);
    } catch {
      refused = true;
    }
    t.ok(refused, `a bit flipped at byte ${at} of ${records[0].length} is refused`);
  }
  t.notOk(opens([records[0], records[0]]), 'a replayed record is refused');
  t.notOk(opens([records[1], records[0]]), 'records out of order are refused');
  t.notOk(opens([records[0], records[2]]), 'a dropped record is refused');
});

t.test('the native module refuses bad arguments with ERR_AEAD_NATIVE instead of touching memory it was not given', async (t) => {
  const aead = native(t);
  const context = aead.context(randomBytes(32), true);
  const nonce = Buffer.alloc(12);
  const bad: Array<[string, () => unknown]> = [
    ['a 20-byte key', () => aead.context(randomBytes(20), true)],
    ['a key that is not bytes', () => aead.context('k'.repeat(32) as unknown as Uint8Array, true)],
    ['a short nonce', () => aead.seal(context, Buffer.alloc(8), Buffer.alloc(4), Buffer.alloc(10), Buffer.alloc(26))],
    ['an output one byte short', () => aead.seal(context, nonce, Buffer.alloc(4), Buffer.alloc(10), Buffer.alloc(25))],
    ['an output that is not bytes', () => aead.seal(context, nonce, Buffer.alloc(4), Buffer.alloc(10), new Uint16Array(13) as unknown as Uint8Array)],
    ['a context that is not one', () => aead.seal({} as never, nonce, Buffer.alloc(4), Buffer.alloc(10), Buffer.alloc(26))],
    ['pieces that are not an array', () => aead.open(context, nonce, Buffer.alloc(4), Buffer.alloc(10) as unknown as Uint8Array[], Buffer.alloc(16))],
    ['a piece that is not bytes', () => aead.open(context, nonce, Buffer.alloc(4), ['x' as unknown as Uint8Array], Buffer.alloc(16))],
    ['a 15-byte tag', () => aead.open(context, nonce, Buffer.alloc(4), [Buffer.alloc(10)], Buffer.alloc(15))],
  ];
  for (const [what, call] of bad) t.throws(call, { code: 'ERR_AEAD_NATIVE' }, what);
  // JavaScript run while the pieces are read (a getter) may dispose the context: refused, never
  // used after it was freed.
  const opening = aead.context(randomBytes(32), false);
  const sneaky: Uint8Array[] = [];
  Object.defineProperty(sneaky, 0, {
    get() {
      aead.dispose(opening);
      return Buffer.alloc(10);
    },
  });
  t.throws(() => aead.open(opening, nonce, Buffer.alloc(4), sneaky, Buffer.alloc(16)), { code: 'ERR_AEAD_NATIVE' }, 'a context disposed while the pieces were read');
  const disposed = aead.context(randomBytes(32), true);
  aead.dispose(disposed);
  t.throws(() => aead.seal(disposed, nonce, Buffer.alloc(4), Buffer.alloc(10), Buffer.alloc(26)), { code: 'ERR_AEAD_NATIVE' }, 'a disposed context');
  aead.dispose(disposed);
  t.pass('disposing twice is harmless');
});

t.test('a native end and a node:crypto end (ALPHANET_AEAD=node, another process) exchange 4 MiB both ways over a real relay', async (t) => {
  native(t);
  const relay = await relayFor(t);
  const child = start(process.execPath, ['--import', 'tsx', CHILD, String(relay.port), '4300'], { env: { ...process.env, ALPHANET_AEAD: 'node' } });
  t.teardown(() => void child.child.kill());
  const line = await child.waitFor(/^backend (\S+) at (\S+)\n/m, 30_000);
  t.equal(line[1], 'node:crypto', 'the child seals and opens with node:crypto');
  const client = await clientFor(t, relay, 10, { identity: generateIdentity(), e2e: true });
  const conn = await client.connect({ address: line[2], port: 4300 });
  const data = pseudoRandom(42, 4 * 1024 * 1024);
  const [echoed] = await Promise.all([
    readAll(conn, 60_000),
    (async () => {
      for (let at = 0; at < data.length; at += 50_000) await conn.send(data.subarray(at, at + 50_000));
      await conn.end();
    })(),
  ]);
  t.equal(sha256(echoed), sha256(data), 'every byte came back, in order');
  const ran = await child.exited(30_000);
  t.equal(ran.code, 0, ran.stderr);
});

t.test('a native open that throws fails that record as not opening (SealError), never as an unexpected error', async (t) => {
  const refusing: NativeAead = {
    context: () => ({}) as never,
    dispose: () => {},
    seal: () => {
      throw Object.assign(new Error('aead: refused'), { code: 'ERR_AEAD_NATIVE' });
    },
    open: () => {
      throw Object.assign(new Error('aead: refused'), { code: 'ERR_AEAD_NATIVE' });
    },
    hkdf: () => {
      throw Object.assign(new Error('aead: refused'), { code: 'ERR_AEAD_NATIVE' });
    },
  };
  const k = key();
  const [record] = recut([Buffer.concat(new Sealer(Buffer.from(k), undefined, undefined).sealPieces(RecordType.Data, pseudoRandom(5, 100)))], []);
  t.throws(() => new Opener(Buffer.from(k), undefined, refusing).open(record.head, record.pieces), { name: 'SealError', message: /native AEAD failed/ });
});

t.test('a module built from older sources (no hkdf) or with an HKDF unlike node:crypto is not used', async (t) => {
  const aead = native(t);
  t.equal(checkModule(aead), undefined, 'the module npm ci built is what these sources expect');
  // The module's functions are not enumerable: taken one by one.
  const all: NativeAead = { context: aead.context, dispose: aead.dispose, seal: aead.seal, open: aead.open, hkdf: aead.hkdf };
  const { hkdf: _hkdf, ...older } = all;
  t.match(checkModule(older), /no hkdf/, 'a build from before the native HKDF');
  t.match(checkModule({ ...all, seal: undefined } as unknown as NativeAead), /no seal/);
  const wrong: NativeAead = { ...all, hkdf: (digest, salt, ikm, info, out) => (aead.hkdf(digest, salt, ikm, info, out), void (out[0] ^= 1)) };
  t.match(checkModule(wrong), /sha256 HKDF differs/, "an HKDF that is not node:crypto's");
  const throwing: NativeAead = {
    ...all,
    hkdf: () => {
      throw new Error('refused');
    },
  };
  t.match(checkModule(throwing), /HKDF threw: refused/);
});
