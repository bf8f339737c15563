/**
 * The cross-relay link (actors/relay/cluster/nats-link.ts) over a real nats-server: bytes intact
 * and in order both ways with a slow reader holding the sender to its credit window, and a gap or
 * a lost NATS connection resetting the link with a clear code at both ends.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { LINK_MAX_PIECE_BYTES, LinkError, NatsLinkHub, linkSubject, type NatsLink } from '../../../actors/relay/cluster/nats-link.ts';
import { startNatsServer } from '../../helpers/nats-server.ts';
import { waitFor, within } from '../../helpers/wait.ts';

const WINDOW = 4 * LINK_MAX_PIECE_BYTES;
const nats = await startNatsServer(t);

async function connection(t: { teardown(fn: () => unknown): void }, url = nats.url): Promise<NatsConnection> {
  const nc = await connect({ servers: url, maxReconnectAttempts: 0 });
  t.teardown(() => nc.close());
  return nc;
}

let links = 0;
async function pair(t: { teardown(fn: () => unknown): void }, url?: string): Promise<[NatsLink, NatsLink]> {
  const id = `spec-${++links}`;
  const a = new NatsLinkHub(await connection(t, url)).open({ id, end: 'a', windowBytes: WINDOW });
  const b = new NatsLinkHub(await connection(t, url)).open({ id, end: 'b', windowBytes: WINDOW });
  t.teardown(() => void (a.destroy(), b.destroy()));
  await Promise.all([a.ready, b.ready]);
  return [a, b];
}

/** Writes `data` in uneven chunks, respecting backpressure, then ends. */
async function send(link: NatsLink, data: Buffer): Promise<void> {
  let offset = 0;
  let n = 0;
  while (offset < data.length) {
    const size = [1, 7000, 65_536, 200_001, 333][n++ % 5];
    if (!link.write(data.subarray(offset, offset + size))) await once(link, 'drain');
    offset += size;
  }
  link.end();
}

/**
 * Everything `link` delivers until its end. Not `for await`: its iterator destroys a Duplex when
 * the readable side ends, cutting off a write side still sending.
 */
function receive(link: NatsLink): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    link.on('data', (chunk: Buffer) => chunks.push(chunk));
    link.once('end', () => resolve(Buffer.concat(chunks)));
    link.once('error', reject);
    // A stream paused with pause() stays paused when a 'data' listener is added.
    link.resume();
  });
}

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('8 MiB each way, intact and in order; a reader that stops holds the sender to the window', async (t) => {
  const [a, b] = await pair(t);
  const ab = randomBytes(8 * 1024 * 1024);
  const ba = randomBytes(8 * 1024 * 1024);
  // b does not read at first: what reaches it must stay within the window it gave.
  b.pause();
  const sentAb = send(a, ab);
  await waitFor(() => a.writableNeedDrain && b.readableLength >= WINDOW - LINK_MAX_PIECE_BYTES, 'a to fill its window and wait for credit');
  // Let NATS deliver anything still in flight, and check again.
  await a.ready;
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(b.readableLength <= WINDOW, `b holds ${b.readableLength} bytes, at most the ${WINDOW}-byte window`);
  t.ok(a.writableNeedDrain, 'a is held back (write() said false) until b reads');
  const [gotAb, gotBa] = await within('both directions to finish', Promise.all([receive(b), receive(a), sentAb, send(b, ba)]), 60_000);
  t.equal(gotAb.length, ab.length);
  t.equal(digest(gotAb), digest(ab), 'a → b intact and in order');
  t.equal(digest(gotBa), digest(ba), 'b → a intact and in order');
});

t.test('a missing message resets the link: ERR_LINK_GAP here, ERR_LINK_RESET at the other end', async (t) => {
  const [a, b] = await pair(t);
  const errors = Promise.all([once(a, 'error'), once(b, 'error')]);
  a.write(Buffer.from('first'));
  const first = await within('the first bytes', once(b, 'data'));
  t.equal(String(first[0]), 'first');
  // A message numbered 7 where 1 is due: NATS dropped 1–6 (as it does for a slow subscriber).
  const forged = Buffer.alloc(6);
  forged.writeUInt32BE(7, 1);
  (await connection(t)).publish(linkSubject(a.id, 'b'), forged);
  const [[aError], [bError]] = await within('both ends to reset', errors);
  t.type(bError, LinkError);
  t.match(bError, { code: 'ERR_LINK_GAP', message: /message 7 arrived where 1 was expected/ });
  t.match(aError, { code: 'ERR_LINK_RESET', message: /NATS dropped messages/ });
});

t.test('a lost NATS connection resets every link of it with ERR_LINK_LOST', async (t) => {
  const own = await startNatsServer(t);
  const [a, b] = await pair(t, own.url);
  a.write(Buffer.from('hello'));
  await within('the first bytes', once(b, 'data'));
  const errors = Promise.all([once(a, 'error'), once(b, 'error')]);
  await own.stop();
  const [[aError], [bError]] = await within('both ends to see NATS go', errors);
  t.match(aError, { code: 'ERR_LINK_LOST' });
  t.match(bError, { code: 'ERR_LINK_LOST' });
});

t.test('small writes of one turn share messages, and arrive in order', async (t) => {
  const [a, b] = await pair(t);
  // A third connection watches what crosses NATS towards b.
  const watcher = await connection(t);
  const seen: number[] = [];
  watcher.subscribe(linkSubject(a.id, 'b'), { callback: (_error, msg) => void seen.push(msg.data.length) });
  await watcher.flush();
  const pieces = Array.from({ length: 1000 }, (_, i) => Buffer.from(`piece ${i};`));
  const received = receive(b);
  for (const piece of pieces) a.write(piece);
  a.end();
  const got = await within('the pieces to arrive', received);
  t.equal(String(got), pieces.map(String).join(''), 'every piece, in order');
  await waitFor(() => seen.length >= 2, 'the watcher to see the messages');
  t.ok(seen.length <= 3, `1,000 writes of one turn crossed in ${seen.length} messages (data, then end)`);
});

t.test('both ends ending cleanly is no error', async (t) => {
  const [a, b] = await pair(t);
  let failed: unknown;
  a.on('error', (e) => (failed = e));
  b.on('error', (e) => (failed = e));
  const [fromA, fromB] = await within('both ends', Promise.all([receive(b), receive(a), send(a, Buffer.from('ping')), send(b, Buffer.from('pong'))]));
  t.equal(String(fromA), 'ping');
  t.equal(String(fromB), 'pong');
  await within('both closed', Promise.all([a.closed ? Promise.resolve() : once(a, 'close'), b.closed ? Promise.resolve() : once(b, 'close')]));
  t.equal(failed, undefined);
});
