/**
 * How a connection's end reaches the peer: a clean close ends the peer's reads, an abort
 * (destroy, or a Duplex destroyed with an error) fails them, and a Duplex learns of its
 * connection's end even while nothing is read or written. Also keepAlive() against the relay's
 * idle timeout (docs/PROTOCOL.md §8).
 */
import { once } from 'node:events';
import t from 'tap';
import { clientFor, openPair, relayFor } from './fixtures.ts';

t.test('a Duplex destroyed with an error fails the peer instead of ending it cleanly', async (t) => {
  const relay = await relayFor(t);
  const [a, b] = await openPair(await clientFor(t, relay, 2), await clientFor(t, relay, 3), 7);
  const sender = a.duplex();
  sender.on('error', () => {});
  const sent = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7 + 3) & 0xff);
  await new Promise<void>((resolve) => sender.write(sent, () => resolve()));
  sender.destroy(new Error('disk full'));
  const receiver = b.duplex();
  const chunks: Buffer[] = [];
  receiver.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [error] = (await once(receiver, 'error')) as [Error & { code?: string }];
  t.equal(error.code, 'ERR_CLOSED_BY_PEER');
  t.match(error.message, /aborted the connection/);
  t.notOk(receiver.readableEnded, 'no clean end was seen');
  // What arrived before the abort is a prefix of what was sent, byte for byte.
  const received = Buffer.concat(chunks);
  t.ok(received.length <= sent.length, `no more than was sent (${received.length})`);
  t.ok(received.equals(sent.subarray(0, received.length)), 'the bytes before the abort are intact and in order');
});

t.test('close() is a clean end for the peer: every byte, then end', async (t) => {
  const relay = await relayFor(t);
  const [a, b] = await openPair(await clientFor(t, relay, 2), await clientFor(t, relay, 3), 7);
  await a.send(new Uint8Array(50_000).fill(7));
  a.close();
  let received = 0;
  for await (const chunk of b) received += chunk.length;
  t.equal(received, 50_000);
  t.equal(b.error, undefined);
});

t.test('destroy() makes the peer read ERR_CLOSED_BY_PEER through the async iterator', async (t) => {
  const relay = await relayFor(t);
  const [a, b] = await openPair(await clientFor(t, relay, 2), await clientFor(t, relay, 3), 7);
  a.destroy();
  await t.rejects(
    (async () => {
      for await (const _ of b);
    })(),
    { code: 'ERR_CLOSED_BY_PEER' },
  );
});

t.test('an idle Duplex learns that the peer closed: its reader ends, then it closes', async (t) => {
  const relay = await relayFor(t);
  const [a, b] = await openPair(await clientFor(t, relay, 2), await clientFor(t, relay, 3), 7);
  const idle = b.duplex();
  const events: string[] = [];
  idle.on('end', () => events.push('end'));
  idle.on('error', (e: Error & { code?: string }) => events.push(`error:${e.code}`));
  // Not events.once: it rejects on the 'error' that is expected here.
  const closed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
  idle.resume(); // a reader, as in a pipeline, but nothing is ever written
  a.close();
  await closed;
  t.same(events, ['end', 'error:ERR_CLOSED_BY_PEER'], 'end of the data, then the failed write side');
});

t.test('a Duplex that ended its side finishes cleanly when the peer ends too', async (t) => {
  const relay = await relayFor(t);
  const [a, b] = await openPair(await clientFor(t, relay, 2), await clientFor(t, relay, 3), 7);
  const left = a.duplex();
  const right = b.duplex();
  const errors: Error[] = [];
  for (const d of [left, right]) d.on('error', (e: Error) => errors.push(e));
  const leftGot: Buffer[] = [];
  left.on('data', (c: Buffer) => leftGot.push(c));
  right.on('data', () => {});
  right.once('end', () => right.end('bye'));
  left.end('hi');
  await Promise.all([once(left, 'close'), once(right, 'close')]);
  t.same(errors, []);
  t.equal(Buffer.concat(leftGot).toString(), 'bye');
});

t.test('keepAlive() holds a quiet connection open past the relay idle timeout', async (t) => {
  const relay = await relayFor(t, { idleTimeoutMs: 300 });
  const server = await clientFor(t, relay, 2);
  const client = await clientFor(t, relay, 3);
  const [kept] = await openPair(server, client, 7);
  const [control] = await openPair(server, client, 8);
  const timer = setInterval(() => kept.keepAlive(), 50);
  t.teardown(() => clearInterval(timer));
  // The control pair sends nothing: once the relay has closed it, the idle timeout has passed.
  await t.rejects(
    (async () => {
      for await (const _ of control);
    })(),
    { code: 'ERR_CLOSED_BY_RELAY', reason: 'IdleTimeout' },
  );
  t.notOk(kept.closed, 'the kept-alive connection is still open');
  await kept.send(new TextEncoder().encode('still here'));
  t.equal(relay.status().pairs.length, 1);
});
