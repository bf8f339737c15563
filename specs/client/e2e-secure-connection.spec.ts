/**
 * The secured connection's lifecycle against a stand-in raw connection (actors/client/e2e/
 * secure-connection.ts), where the races a relay can produce are made to happen every time: the
 * raw connection already closed when the secured one is built, close() right after send().
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import type { VirtualConnection } from '../../actors/client/connection.ts';
import type { ClientError } from '../../actors/client/errors.ts';
import { RecordReader, RecordType } from '../../actors/client/e2e/records.ts';
import { SecureConnection } from '../../actors/client/e2e/secure-connection.ts';
import { Opener, Sealer, transportKeys } from '../../actors/client/e2e/sealing.ts';
import { closedWith, readUntilFailure } from '../helpers/connection-end.ts';
import { waitFor, within } from '../helpers/wait.ts';
import { CloseReason } from '../../protocol/index.ts';

/**
 * A raw connection without a relay: `incoming` is what it reads, `sent` what was handed to send()
 * (in order), `hold` keeps sends from settling (a window with no credit) until `release()`.
 */
class FakeRaw extends EventEmitter {
  readonly localAddress = '100.64.0.3';
  readonly localPort = 7;
  readonly remoteAddress = '100.64.0.2';
  readonly remotePort = 40000;
  readonly connectionId = 1;
  readonly peerKey = undefined;
  error: ClientError | undefined;
  isClosed = false;
  incoming: Uint8Array[] = [];
  sent: Buffer[] = [];
  closeCalls = 0;
  hold = false;
  /** Bytes handed over and not yet let go (what a blocked window holds). */
  awaitingCredit = false;
  #held: Array<() => void> = [];
  #reader: ((chunk: Uint8Array | null) => void) | undefined;
  readonly #actor = {
    id: 'fake',
    getSnapshot: () => ({ status: this.isClosed ? 'done' : 'active', value: this.isClosed ? 'closed' : { connected: 'open' }, hasTag: () => !this.isClosed }),
    subscribe: () => ({ unsubscribe() {} }),
  };

  layerParts(): { host: never; actor: never } {
    return { host: {} as never, actor: this.#actor as never };
  }
  get closed(): boolean {
    return this.isClosed;
  }
  get sendsAwaitCredit(): boolean {
    return this.awaitingCredit;
  }
  get receiveWindow(): number {
    return 1 << 20;
  }
  get bufferedBytes(): number {
    return 0;
  }
  send(bytes: Uint8Array): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error('closed'));
    this.sent.push(Buffer.from(bytes));
    if (!this.hold) return Promise.resolve();
    return new Promise((resolve) => this.#held.push(resolve));
  }
  /** A record written as pieces (head, ciphertext, tag) is one send of their bytes. */
  sendPieces(pieces: readonly Uint8Array[]): Promise<void> {
    return this.send(Buffer.concat(pieces));
  }
  release(): void {
    this.hold = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }
  takeChunk(): Uint8Array | undefined {
    return this.incoming.shift();
  }
  read(): Promise<Uint8Array | null> {
    const chunk = this.incoming.shift();
    if (chunk !== undefined) return Promise.resolve(chunk);
    if (this.isClosed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#reader = resolve));
  }
  close(): void {
    this.closeCalls++;
    this.finish();
  }
  closeWithReason(reason: CloseReason): void {
    // A plain close said explicitly (the secured connection's cut close) is a close all the same.
    if (reason === CloseReason.Normal) this.closeCalls++;
    this.finish();
  }
  destroy(): void {
    this.finish();
  }
  async end(): Promise<void> {}
  finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.#reader?.(null);
    this.emit('close', this.error);
  }
}

/** Both ends' record keys: what one end seals the other opens. */
function keyPair(): { mine: { sealer: Sealer; opener: Opener }; theirs: { sealer: Sealer; opener: Opener } } {
  const keys = transportKeys(randomBytes(32), randomBytes(32), randomBytes(64), true);
  return {
    mine: { sealer: new Sealer(keys.send), opener: new Opener(keys.receive) },
    theirs: { sealer: new Sealer(keys.receive), opener: new Opener(keys.send) },
  };
}

function secured(raw: FakeRaw, ends: ReturnType<typeof keyPair>): VirtualConnection {
  return new SecureConnection(raw as unknown as VirtualConnection, ends.mine.sealer, ends.mine.opener, new RecordReader());
}

/** The types of the records sealed in `sent`, opened in order with the peer's opener. */
function recordTypes(sent: Buffer[], opener: Opener): number[] {
  const reader = new RecordReader();
  for (const chunk of sent) reader.push(chunk);
  const types: number[] = [];
  for (let record = reader.next(); record !== undefined; record = reader.next()) {
    opener.open(record.head, record.pieces);
    types.push(record.type);
  }
  return types;
}

t.test("the raw connection closed before the secured one was built (reply, data, end marker and SocketClosed in one read): its data is read, it ends cleanly, and 'close' comes", async (t) => {
  const ends = keyPair();
  const raw = new FakeRaw();
  raw.incoming.push(Buffer.concat([ends.theirs.sealer.seal(RecordType.Data, Buffer.from('hello')), ends.theirs.sealer.seal(RecordType.End, new Uint8Array(0))]));
  raw.finish();
  const conn = secured(raw, ends);
  const closing = within("the secured connection's 'close'", new Promise<unknown>((resolve) => conn.once('close', resolve)));
  const { bytes, error } = await within('the reads to end', readUntilFailure(conn));
  t.equal(bytes.toString(), 'hello', 'the data that came before the close');
  t.equal(error, undefined, 'a clean end');
  t.equal(await closing, undefined, "'close' without an error");
});

t.test('close() right after a send() not awaited: the end marker follows the data, then the raw close (the peer ends cleanly)', async (t) => {
  const ends = keyPair();
  const raw = new FakeRaw();
  const conn = secured(raw, ends);
  const sending = conn.send('last words');
  conn.close();
  await within('the send to settle', sending);
  await waitFor(() => raw.closeCalls === 1, 'the raw close');
  t.same(recordTypes(raw.sent, ends.theirs.opener), [RecordType.Data, RecordType.End], 'the data, then the end marker, both sealed in order');
  t.equal(await closedWith(conn), undefined, 'a clean close here');
});

t.test('close() with under 20 bytes of credit: the end marker waits for credit and the raw close waits for it, instead of cutting it', async (t) => {
  const ends = keyPair();
  const raw = new FakeRaw();
  const conn = secured(raw, ends);
  await conn.send('all of it went');
  raw.hold = true; // the marker finds no credit
  conn.close();
  t.same(recordTypes(raw.sent, ends.theirs.opener), [RecordType.Data, RecordType.End], 'the marker is handed over behind the data');
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(raw.closeCalls, 0, 'the raw connection is not closed under the waiting marker');
  raw.release();
  await waitFor(() => raw.closeCalls === 1, 'the raw close once the marker went');
  t.pass('closed once the marker went');
});

t.test('close() with sealed data still waiting for credit cuts at once, with no end marker (the peer reports truncation, the truth)', async (t) => {
  const ends = keyPair();
  const raw = new FakeRaw();
  const conn = secured(raw, ends);
  raw.hold = true;
  raw.awaitingCredit = true;
  const sending = conn.send(new Uint8Array(100_000)).catch((error: unknown) => error);
  conn.close();
  t.equal(raw.closeCalls, 1, 'closed at once');
  t.notOk(recordTypes(raw.sent, ends.theirs.opener).includes(RecordType.End), 'no end marker after data that never went');
  raw.release();
  await within('the cut send to settle', sending);
});
