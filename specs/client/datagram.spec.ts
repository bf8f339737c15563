/**
 * The client's datagram sockets (docs/CLIENT.md "Datagrams"): bind, send, the async iterator with
 * the relay-stamped sender, boundaries, local errors, the bounded receive queue (drop oldest),
 * close and AbortSignal.
 */
import t from 'tap';
import { MAX_DATAGRAM_PAYLOAD_BYTES } from '../../protocol/index.ts';
import type { DatagramMessage, DatagramSocket } from '../../actors/client/index.ts';
import { clientFor, cuttableProxy, relayFor } from './fixtures.ts';

const NEXT_TIMEOUT_MS = 5_000;

/** The next message, or a failure naming what was awaited. */
function nextMessage(socket: DatagramSocket, what: string): Promise<DatagramMessage> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no datagram (${what}) within ${NEXT_TIMEOUT_MS} ms`)), NEXT_TIMEOUT_MS);
  });
  return Promise.race([socket.next(), timeout]).then((result) => {
    clearTimeout(timer);
    if (result.done) throw new Error(`the socket ended while waiting for ${what}`);
    return result.value;
  });
}

t.test('send and receive between two clients: sender stamped, boundaries kept, replies route back', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.datagram(7777);
  const peer = await b.datagram(0);
  t.equal(server.port, 7777);
  t.ok(peer.port >= 49152, `port 0 is ephemeral (${peer.port})`);
  const sizes = [0, 1, MAX_DATAGRAM_PAYLOAD_BYTES];
  for (const n of sizes) t.equal(peer.send(a.virtualIp, 7777, Buffer.alloc(n, n & 0xff)), true);
  peer.send(a.virtualIp, 7777, 'text');
  for (const n of sizes) {
    const got = await nextMessage(server, `${n} bytes`);
    t.same(got.bytes, Buffer.alloc(n, n & 0xff), `${n} bytes arrive as one message`);
    t.equal(got.address, b.virtualIp, 'from the sender the relay stamped');
    t.equal(got.port, peer.port);
  }
  const text = await nextMessage(server, 'the text');
  t.equal(text.bytes.toString(), 'text');
  server.send(text.address, text.port, 'reply');
  const reply = await nextMessage(peer, 'the reply');
  t.same({ address: reply.address, port: reply.port, text: reply.bytes.toString() }, { address: a.virtualIp, port: 7777, text: 'reply' });
  t.equal(server.stats.received, 4);
  t.equal(peer.stats.sent, 4);
});

t.test('local errors throw; network loss is silent', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const socket = await a.datagram(0);
  t.throws(() => socket.send('10.0.0.9', 7, Buffer.alloc(MAX_DATAGRAM_PAYLOAD_BYTES + 1)), { code: 'ERR_DATAGRAM_TOO_LARGE' });
  t.throws(() => socket.send('nowhere', 7, 'x'), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => socket.send('10.0.0.9', 0, 'x'), { code: 'ERR_INVALID_ARGUMENT' });
  t.equal(socket.send('10.0.0.9', 7, 'to nobody'), true, 'a datagram to nobody is sent and lost silently');
  await t.rejects(a.datagram(socket.port), { code: 'ERR_ADDRESS_IN_USE' });
  socket.close();
  t.throws(() => socket.send('10.0.0.9', 7, 'x'), { code: 'ERR_SOCKET_STATE' });
  const again = await a.datagram(socket.port);
  t.equal(again.port, socket.port, 'close() freed the port');
});

t.test('a full receive queue drops the oldest messages and counts them', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const slow = await a.datagram(7000, { receiveQueue: 4 });
  const marker = await a.datagram(7001);
  const sender = await b.datagram(0);
  for (let i = 0; i < 10; i++) sender.send(a.virtualIp, 7000, `m${i}`);
  sender.send(a.virtualIp, 7001, 'after');
  // One relay connection carries both in order: once the marker is here, all ten have arrived.
  await nextMessage(marker, 'the marker');
  t.equal(slow.stats.received, 10);
  t.equal(slow.stats.receiveDropped, 6);
  const kept: string[] = [];
  for (let i = 0; i < 4; i++) kept.push((await nextMessage(slow, `kept ${i}`)).bytes.toString());
  t.same(kept, ['m6', 'm7', 'm8', 'm9'], 'the newest four are kept');
});

t.test('close() and an AbortSignal end the iterator; closing the client ends every socket', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const closed = await a.datagram(0);
  const waiting = closed.next();
  closed.close();
  t.same(await waiting, { value: undefined, done: true });
  const ac = new AbortController();
  const aborted = await a.datagram(0, { signal: ac.signal });
  const loop = (async () => {
    let n = 0;
    for await (const _ of aborted) n++;
    return n;
  })();
  ac.abort();
  t.equal(await loop, 0, 'the for-await loop ends');
  t.equal(aborted.closed, true);
  const last = await a.datagram(0);
  const pending = last.next();
  await a.close();
  t.match(await pending, { done: true }, 'closing the client ends the socket');
});

/** Resolves once the client's state name starts with `prefix` (fails after NEXT_TIMEOUT_MS). */
function stateReached(client: { state: string; actor: { subscribe: (f: () => void) => { unsubscribe: () => void } } }, prefix: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (client.state.startsWith(prefix)) return resolve();
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`the client did not reach ${prefix} within ${NEXT_TIMEOUT_MS} ms (it is ${client.state})`));
    }, NEXT_TIMEOUT_MS);
    const sub = client.actor.subscribe(() => {
      if (!client.state.startsWith(prefix)) return;
      clearTimeout(timer);
      sub.unsubscribe();
      resolve();
    });
  });
}

t.test('a reconnecting client drops sends, then binds its datagram ports again', async (t) => {
  const relay = await relayFor(t);
  const proxy = await cuttableProxy(t, relay);
  const a = await clientFor(t, proxy, 2, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  const b = await clientFor(t, relay, 3);
  const socket = await a.datagram(7777);
  const peer = await b.datagram(0);
  proxy.cut();
  await stateReached(a, 'reconnecting');
  t.equal(socket.send(b.virtualIp, peer.port, 'while away'), false, 'a send while reconnecting is dropped here');
  t.equal(socket.stats.sendDropped, 1);
  await stateReached(a, 'connected');
  // Answers come in order on one connection: once this bind is answered, the rebind of 7777 was.
  (await a.datagram(0)).close();
  t.equal(socket.closed, false, 'the socket lived through the reconnect');
  peer.send(a.virtualIp, 7777, 'after');
  const got = await nextMessage(socket, 'a datagram after the reconnect');
  t.equal(got.bytes.toString(), 'after', 'port 7777 is bound again');
  t.equal(socket.send(b.virtualIp, peer.port, 'back'), true);
  t.equal((await nextMessage(peer, 'the answer')).bytes.toString(), 'back');
});

t.test('a datagram sent just before close() still arrives (it leaves before the unbind)', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.datagram(7778);
  const peer = await b.datagram(0);
  t.equal(peer.send(a.virtualIp, 7778, 'last'), true);
  peer.close();
  const got = await nextMessage(server, 'the datagram sent before close()');
  t.equal(got.bytes.toString(), 'last');
});
