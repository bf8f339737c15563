/**
 * The client's receive window (docs/PROTOCOL.md §7): it grows ×4 when the sender reports it is
 * blocked on credit while the application keeps up, never past MAX_WINDOW_BYTES, and halves back
 * to the initial window while the application leaves data unread; what it buffers never exceeds
 * what it granted. The sender is a raw protocol client, so every byte and grant is counted.
 */
import t from 'tap';
import type { Test } from 'tap';
import { connect, WINDOW_GROWTH_FACTOR, type VirtualConnection } from '../../actors/client/index.ts';
import { INITIAL_WINDOW_BYTES, MAX_WINDOW_BYTES, PacketType, encodeArbitraryData } from '../../protocol/index.ts';
import { nextId, type RawClient } from '../helpers/raw-client.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';

const MIB = 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024).map((_, i) => i);
const DEADLINE_MS = 10_000;

/** Resolves when `check()` holds; fails with `what` after the deadline. */
async function until(check: () => boolean, what: string): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > DEADLINE_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A raw sender (127.0.0.2) connected to a library receiver (127.0.0.3) listening on port 80. */
async function senderAndReceiver(t: Test): Promise<{ a: RawClient; id: number; conn: VirtualConnection }> {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  // The raw client speaks the protocol, not TLS: the library's end runs without e2e to match.
  const b = await connect({ host: '127.0.0.1', port: relay.port, localAddress: '127.0.0.3', e2e: false });
  t.teardown(() => b.close());
  const listener = await b.listen(80);
  const accepted = listener.accept();
  const { port } = await a.bind(0);
  const requestId = nextId();
  const destination = { ip: Number(b.virtualIp.split('.').reduce((n, o) => n * 256 + Number(o), 0)), port: 80 };
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: aIp.ip, port }, destination });
  const response = await a.next(PacketType.SocketConnectionResponse);
  return { a, id: response.connectionId, conn: await accepted };
}

/** Counts the credit granted to `a` on `id`, and the data echoed back as a barrier. */
function creditCounter(a: RawClient, id: number): { readonly total: number; next(total: number): Promise<void> } {
  let total = 0;
  const pump = async (): Promise<void> => {
    for (;;) {
      const update = await a.next(PacketType.WindowUpdate, 60_000).catch(() => undefined);
      if (update === undefined) return;
      if (update.connectionId === id) total += update.bytes;
    }
  };
  void pump();
  return {
    get total() {
      return total;
    },
    next: (want) => until(() => total >= want, `${want} bytes of credit (have ${total})`),
  };
}

function send(a: RawClient, id: number, bytes: number): void {
  for (let sent = 0; sent < bytes; sent += CHUNK.length) a.send(encodeArbitraryData(id, CHUNK));
}

t.test('the window grows per blocked round while the reader keeps up, stops at MAX_WINDOW_BYTES, and shrinks back when the reader stalls', async (t) => {
  const { a, id, conn } = await senderAndReceiver(t);
  const credit = creditCounter(a, id);
  let read = 0;
  let reading = true;
  let gate: (() => void) | undefined;
  let corrupt = 0;
  void (async () => {
    for await (const chunk of conn) {
      for (let i = 0; i < chunk.length; i += 4099) if (chunk[i] !== (read + i) % 256) corrupt++;
      read += chunk.length;
      if (!reading) await new Promise<void>((resolve) => (gate = resolve));
    }
  })().catch(() => {
    // The client closes with the test: the loop ends with ERR_CLIENT_CLOSED.
  });
  /** Every grant the reader made so far has reached the sender: a byte echoed back comes after them. */
  const settled = async (): Promise<void> => {
    await conn.send(new Uint8Array([1]));
    await a.next(PacketType.ArbitraryData);
  };
  /** The sender's credit now: the initial window plus all grants, minus what it sent. */
  const creditNow = (): number => INITIAL_WINDOW_BYTES + credit.total - sent;
  t.equal(conn.receiveWindow, INITIAL_WINDOW_BYTES, 'starts at the initial window');
  let sent = 0;
  let window = INITIAL_WINDOW_BYTES;
  while (window < MAX_WINDOW_BYTES) {
    // A round: the sender spends all its credit and the reader takes it all...
    send(a, id, window);
    sent += window;
    await until(() => read === sent, `the reader to take ${sent} bytes`);
    // ...then the sender reports it is blocked: the reader kept up, so the window grows and the
    // sender is granted the difference at once.
    a.send({ type: PacketType.WindowUpdate, connectionId: id, bytes: 0 });
    await until(() => conn.receiveWindow === window * WINDOW_GROWTH_FACTOR, `the window to grow past ${window}`);
    window *= WINDOW_GROWTH_FACTOR;
    await settled();
    t.equal(creditNow(), window, `the sender holds the whole ${window / MIB} MiB window`);
  }
  // At the cap, a blocked round grows nothing: the sender's next bytes arrive after the signal.
  send(a, id, window);
  sent += window;
  await until(() => read === sent, 'the reader to take the capped round');
  a.send({ type: PacketType.WindowUpdate, connectionId: id, bytes: 0 });
  send(a, id, CHUNK.length);
  sent += CHUNK.length;
  await until(() => read === sent, 'the byte after the signal');
  t.equal(conn.receiveWindow, MAX_WINDOW_BYTES, 'no growth past MAX_WINDOW_BYTES');
  await settled();
  const stallCredit = creditNow();
  t.ok(stallCredit > (MAX_WINDOW_BYTES * 3) / 4 && stallCredit <= MAX_WINDOW_BYTES, `the sender holds ${stallCredit} bytes of credit, within the cap`);

  // The reader stalls: the sender spends all its credit, which sits unread; the window shrinks.
  reading = false;
  send(a, id, CHUNK.length);
  sent += CHUNK.length;
  await until(() => gate !== undefined, 'the reader to stall');
  const rest = creditNow();
  send(a, id, rest);
  sent += rest;
  await until(() => read + conn.bufferedBytes === sent, 'every byte sent to be read or buffered');
  t.ok(conn.bufferedBytes <= MAX_WINDOW_BYTES, `buffered ${conn.bufferedBytes} bytes, no more than the window granted`);
  t.equal(conn.receiveWindow, INITIAL_WINDOW_BYTES, 'the window went back to the initial one');
  // The reader resumes: it reads everything and grants only the small window back.
  const creditBefore = credit.total;
  reading = true;
  gate?.();
  await until(() => read === sent, 'the reader to catch up');
  await settled();
  const regranted = credit.total - creditBefore;
  t.ok(regranted > 0 && regranted <= INITIAL_WINDOW_BYTES, `after the stall the reader granted ${regranted} bytes, at most the initial window`);
  t.equal(corrupt, 0, 'every byte read was the byte sent, in order');
});
