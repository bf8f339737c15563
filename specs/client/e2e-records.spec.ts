/**
 * The end-to-end transport's pieces without a network (actors/client/e2e/records.ts, sealing.ts,
 * handshake.ts's prologue, static-key.ts): records cut out of a byte stream split anywhere, and
 * sealed messages that open only exactly as sealed, in order, with the right key.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import Noise from 'noise-handshake';
import t from 'tap';
import { generateIdentity } from '../../actors/client/identity.ts';
import type { VirtualConnection } from '../../actors/client/connection.ts';
import { prologueFor } from '../../actors/client/e2e/handshake.ts';
import {
  END_RECORD_BYTES,
  MAX_RECORD_BODY_BYTES,
  MAX_RECORD_PLAINTEXT_BYTES,
  RecordFormatError,
  RecordReader,
  RecordType,
  handshakeRecord,
  joinPieces,
} from '../../actors/client/e2e/records.ts';
import { nativeAead } from '../../actors/client/e2e/native-aead.ts';
import { Opener, REKEY_INTERVAL, SealError, Sealer, transportKeys } from '../../actors/client/e2e/sealing.ts';
import { curveFor, peerStaticKey, staticKeyPair } from '../../actors/client/e2e/static-key.ts';

function keys(): { sealer: Sealer; opener: Opener; key: Buffer } {
  const key = transportKeys(randomBytes(32), randomBytes(32), randomBytes(64), true).send;
  return { sealer: new Sealer(key), opener: new Opener(key), key };
}

interface Record {
  type: number;
  head: Buffer;
  body: Buffer;
  /** The body as the reader handed it: one view per chunk it arrived in. */
  pieces: Uint8Array[];
}

function drain(reader: RecordReader): Record[] {
  const out: Record[] = [];
  for (let record = reader.next(); record !== undefined; record = reader.next()) {
    out.push({ type: record.type, head: Buffer.from(record.head), body: Buffer.from(joinPieces(record.pieces)), pieces: record.pieces });
  }
  return out;
}

t.test('records cut out of a stream split at every boundary are the records written, and open to what was sealed', async (t) => {
  const { sealer, key } = keys();
  const plain = [randomBytes(1), randomBytes(300)];
  const records = [handshakeRecord(randomBytes(96)), sealer.seal(RecordType.Data, plain[0]), sealer.seal(RecordType.Data, plain[1]), sealer.seal(RecordType.End, new Uint8Array(0))];
  const stream = Buffer.concat(records);
  const whole = new RecordReader();
  whole.push(stream);
  const expected = drain(whole);
  t.same(expected.map((r) => r.type), [RecordType.Handshake, RecordType.Data, RecordType.Data, RecordType.End]);
  t.equal(whole.pendingBytes, 0);
  for (let cut = 1; cut < stream.length; cut++) {
    // A copy per cut: opening decrypts in place (the pieces are the opener's to give up).
    const copy = Buffer.from(stream);
    const reader = new RecordReader();
    reader.push(copy.subarray(0, cut));
    const got = drain(reader);
    reader.push(copy.subarray(cut));
    got.push(...drain(reader));
    if (Buffer.compare(Buffer.concat(got.map((r) => Buffer.concat([r.head, r.body]))), stream) !== 0) t.fail(`split at ${cut}: records differ`);
    // Opened from the pieces as they came (the tag split too, at some cuts), without joining them.
    const opener = new Opener(key);
    const opened = got.slice(1).map((r) => Buffer.concat(opener.open(r.head, r.pieces)));
    if (!opened[0].equals(plain[0]) || !opened[1].equals(plain[1]) || opened[2].length !== 0) t.fail(`split at ${cut}: opened to other bytes`);
  }
  t.pass('every split opened to the plaintext sealed');
  const bytewise = new RecordReader();
  const got: Record[] = [];
  for (const byte of stream) {
    bytewise.push(Uint8Array.of(byte));
    got.push(...drain(bytewise));
  }
  t.same(
    got.map((r) => [r.type, r.head, r.body]),
    expected.map((r) => [r.type, r.head, r.body]),
    'one byte at a time too',
  );
  t.equal(records[3].length, END_RECORD_BYTES, 'an end marker is head and tag only');
});

t.test('a record longer than the largest sealed message, or of an unknown type, is refused before it is buffered', async (t) => {
  const long = new RecordReader();
  long.push(Uint8Array.of(RecordType.Data, (MAX_RECORD_BODY_BYTES + 1) >>> 16, ((MAX_RECORD_BODY_BYTES + 1) >>> 8) & 0xff, (MAX_RECORD_BODY_BYTES + 1) & 0xff));
  t.throws(() => long.next(), { name: 'RecordFormatError' });
  const unknown = new RecordReader();
  unknown.push(Uint8Array.of(9, 0, 0, 16));
  t.throws(() => unknown.next(), { name: 'RecordFormatError' });
});

t.test('a sealed message opens only as sealed: any changed byte, a replay, a reorder or another key fails', async (t) => {
  const { sealer, opener, key } = keys();
  const plain = [randomBytes(40), randomBytes(MAX_RECORD_PLAINTEXT_BYTES), randomBytes(7)];
  const sealed = plain.map((p) => sealer.seal(RecordType.Data, p));
  const open = (o: Opener, record: Uint8Array): Buffer => {
    const reader = new RecordReader();
    reader.push(record);
    const r = reader.next()!;
    return Buffer.concat(o.open(r.head, r.pieces));
  };
  t.notOk(sealed[1].includes(plain[1].subarray(0, 32)), 'no plaintext in the record');
  // Every byte of the first record, head included, changed in turn: each fails on a fresh opener.
  let failed = 0;
  for (let i = 0; i < sealed[0].length; i++) {
    const bad = Buffer.from(sealed[0]);
    bad[i] ^= 0x01;
    try {
      const reader = new RecordReader();
      reader.push(bad);
      const r = reader.next();
      if (r === undefined) failed++; // a longer length: the record never completes
      else new Opener(key).open(r.head, r.pieces);
    } catch (error) {
      if (error instanceof SealError || error instanceof RecordFormatError) failed++;
      else throw error;
    }
  }
  t.equal(failed, sealed[0].length, 'every changed byte fails (or never completes a record)');
  t.same(open(opener, sealed[0]), plain[0], 'in order, each opens to its plaintext');
  t.throws(() => open(opener, sealed[0]), { name: 'SealError' }, 'a replay of it does not');
  const reordered = keys();
  const s0 = reordered.sealer.seal(RecordType.Data, plain[0]);
  const s1 = reordered.sealer.seal(RecordType.Data, plain[1]);
  t.throws(() => open(reordered.opener, s1), { name: 'SealError' }, 'the second before the first does not');
  t.ok(s0.length > 0);
  t.throws(() => open(keys().opener, sealer.seal(RecordType.Data, plain[2])), { name: 'SealError' }, 'another key does not');
});

t.test('the identity key, in its X25519 form, is the Noise static key; a first handshake message made for other endpoints does not complete', async (t) => {
  const initiatorId = generateIdentity();
  const responderId = generateIdentity();
  const initiatorKeys = staticKeyPair(initiatorId);
  const responderKeys = staticKeyPair(responderId);
  t.same(Buffer.from(peerStaticKey(initiatorId.publicKey)), Buffer.from(initiatorKeys.publicKey), "a peer's announced key maps to the static key it holds");
  t.notSame(Buffer.from(peerStaticKey(responderId.publicKey)), Buffer.from(initiatorKeys.publicKey), "and another identity's to another");
  t.equal(staticKeyPair(initiatorId), initiatorKeys, 'made once per identity');
  const ends = (connectorPort: number) => ({
    connector: { localAddress: '100.64.0.2', localPort: connectorPort, remoteAddress: '100.64.0.3', remotePort: 7 } as VirtualConnection,
    acceptor: { localAddress: '100.64.0.3', localPort: 7, remoteAddress: '100.64.0.2', remotePort: connectorPort } as VirtualConnection,
  });
  const one = ends(40000);
  const other = ends(40001);
  t.same(prologueFor(one.connector, 'connector'), prologueFor(one.acceptor, 'acceptor'), 'both ends of a connection agree on its prologue');
  t.notSame(prologueFor(one.connector, 'connector'), prologueFor(other.connector, 'connector'), 'another connection has another');
  const handshakeOn = (connector: VirtualConnection, acceptor: VirtualConnection): Uint8Array | Error => {
    const initiator = new Noise('IK', true, initiatorKeys);
    initiator.initialise(prologueFor(connector, 'connector'), peerStaticKey(responderId.publicKey));
    const responder = new Noise('IK', false, responderKeys);
    responder.initialise(prologueFor(acceptor, 'acceptor'));
    try {
      responder.recv(initiator.send());
      initiator.recv(responder.send());
      return initiator.complete && responder.complete ? Buffer.from(responder.rs!) : new Error('incomplete');
    } catch (error) {
      return error as Error;
    }
  };
  t.same(handshakeOn(one.connector, one.acceptor), Buffer.from(peerStaticKey(initiatorId.publicKey)), 'on its own connection it completes, and the acceptor learns the connector key');
  t.type(handshakeOn(one.connector, other.acceptor), Error, 'replayed onto another connection it fails');
});

t.test('the kept static-static secret gives the handshake the uncached curve gives: each end completes with the other, again and again', async (t) => {
  const a = staticKeyPair(generateIdentity());
  const bId = generateIdentity();
  const b = staticKeyPair(bId);
  const prologue = new TextEncoder().encode('alphanet-e2e/1\n');
  for (let round = 0; round < 3; round++) {
    // The initiator keeps its ss secret, the responder computes it afresh: they must agree.
    const initiator = new Noise('IK', true, a, { curve: curveFor(a, peerStaticKey(bId.publicKey)) });
    initiator.initialise(prologue, peerStaticKey(bId.publicKey));
    const responder = new Noise('IK', false, b);
    responder.initialise(prologue);
    responder.recv(initiator.send());
    initiator.recv(responder.send());
    t.ok(initiator.complete && responder.complete, `round ${round + 1} completes`);
    const mine = transportKeys(initiator.tx!, initiator.rx!, initiator.hash!, true);
    const theirs = transportKeys(responder.tx!, responder.rx!, responder.hash!, false);
    t.same([mine.send, mine.receive], [theirs.receive, theirs.send], `round ${round + 1}: what one end seals with, the other opens with`);
    t.notSame(mine.send, mine.receive, 'a key per direction');
  }
});

t.test('both ends replace the key in lockstep every rekey interval: messages keep opening, and those after it are under another key', async (t) => {
  t.equal(REKEY_INTERVAL, 2 ** 20, 'the interval both ends use (at most 64 GiB per key)');
  const key = transportKeys(randomBytes(32), randomBytes(32), randomBytes(64), true).send;
  const sealer = new Sealer(Buffer.from(key), 4);
  const opener = new Opener(Buffer.from(key), 4);
  const unchanged = new Opener(Buffer.from(key), 1000);
  const openOne = (o: Opener, record: Uint8Array): Buffer => {
    const reader = new RecordReader();
    // A copy: the record is opened by two openers, and opening decrypts in place.
    reader.push(Buffer.from(record));
    const r = reader.next()!;
    return Buffer.concat(o.open(r.head, r.pieces));
  };
  for (let i = 0; i < 10; i++) {
    const plain = randomBytes(33);
    const record = sealer.seal(RecordType.Data, plain);
    t.same(openOne(opener, record), plain, `message ${i} opens at the other end`);
    if (i < 4) t.same(openOne(unchanged, record), plain, `message ${i} is under the first key`);
    else if (i === 4) t.throws(() => openOne(unchanged, record), { name: 'SealError' }, 'message 4 is under the next key: the first no longer opens it');
  }
});

for (const [backend, aead] of [
  ['the native module', nativeAead],
  ['node:crypto', undefined],
] as const) {
  t.test(`sealPieces with ${backend} gives AES-256-GCM of the record (nonce = 4 zero bytes and the 64-bit count, the head as associated data): the head, then ciphertext and tag, opening in order`, async (t) => {
    const key = transportKeys(randomBytes(32), randomBytes(32), randomBytes(64), true).send;
    // What the construction says each record is, computed here with node:crypto directly.
    const expected = (count: number, head: Buffer, plaintext: Buffer): Buffer => {
      const nonce = Buffer.alloc(12);
      nonce.writeUInt32BE(Math.floor(count / 0x1_0000_0000), 4);
      nonce.writeUInt32BE(count >>> 0, 8);
      const cipher = createCipheriv('aes-256-gcm', Buffer.from(key), nonce);
      cipher.setAAD(head);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([head, body, cipher.getAuthTag()]);
    };
    const inPieces = new Sealer(Buffer.from(key), REKEY_INTERVAL, aead);
    const opener = new Opener(Buffer.from(key), REKEY_INTERVAL, aead);
    const reader = new RecordReader();
    for (const [i, n] of [MAX_RECORD_PLAINTEXT_BYTES, 1, 0, 1000].entries()) {
      const plaintext = randomBytes(n);
      const type = n === 0 ? RecordType.End : RecordType.Data;
      const pieces = inPieces.sealPieces(type, plaintext);
      t.equal(pieces[0].length, 4, `record ${i}: the head is the first piece`);
      const joined = Buffer.concat(pieces);
      t.same(joined, expected(i, pieces[0], plaintext), `record ${i} (${n} bytes): AES-256-GCM under the count's nonce, the tag last`);
      t.same(pieces[0], Buffer.from([type, (n + 16) >>> 16, ((n + 16) >>> 8) & 0xff, (n + 16) & 0xff]), `record ${i}: the head is type and body length`);
      reader.push(joined);
      const [record] = drain(reader);
      t.same(Buffer.concat(opener.open(record.head, record.pieces)), plaintext, `record ${i} opens to what was sealed`);
    }
  });
}
