/** Every client error code reached over real TCP against the in-process relay. */
import net from 'node:net';
import t from 'tap';
import { connect } from '../../actors/client/index.ts';
import { clientFor, cuttableProxy, relayFor } from './fixtures.ts';

const bytes = new Uint8Array([1, 2, 3]);

t.test('ERR_RELAY_UNREACHABLE: nothing listens at the relay address', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  await t.rejects(connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /cannot reach the relay at 127\.0\.0\.1:\d+/,
  });
});

t.test('ERR_RELAY_UNREACHABLE: a silent server times out the handshake', async (t) => {
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  await t.rejects(connect({ host: '127.0.0.1', port, connectTimeoutMs: 100 }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /within 100 ms/,
  });
});

t.test('connect() honours an AbortSignal', async (t) => {
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const ac = new AbortController();
  const pending = connect({ host: '127.0.0.1', port, signal: ac.signal });
  ac.abort(new Error('stop'));
  await t.rejects(pending, { message: 'stop' });
});

t.test('connect errors: offline, not bound, not listening, refused, timeout', async (t) => {
  const relay = await relayFor(t, { requestTimeoutMs: 200 });
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);

  await t.rejects(b.connect({ address: '10.0.250.250', port: 80 }), { code: 'ERR_TARGET_OFFLINE', message: /10\.0\.250\.250:80 is offline/ });
  await t.rejects(b.connect({ address: a.virtualIp, port: 80 }), { code: 'ERR_NOT_LISTENING', reason: 'not-bound', message: /not bound/ });

  const boundOnly = a.socket();
  await boundOnly.bind(81);
  t.equal(boundOnly.state, 'bound');
  await t.rejects(b.connect({ address: a.virtualIp, port: 81 }), { code: 'ERR_NOT_LISTENING', reason: 'not-listening', message: /bound but not listening/ });

  const requests: string[] = [];
  await a.listen(82, { accept: (req) => (requests.push(`${req.remoteAddress}->${req.localPort}`), false) });
  const refused = b.socket();
  await t.rejects(refused.connect({ address: a.virtualIp, port: 82 }), { code: 'ERR_CONNECTION_REFUSED', message: /refused/ });
  t.same(requests, [`${b.virtualIp}->82`]);
  t.equal(refused.state, 'closed');
  t.equal(refused.actor.getSnapshot().context.error?.code, 'ERR_CONNECTION_REFUSED');

  // A decision that never comes: the relay's 200 ms request timeout answers.
  await a.listen(83, { accept: () => new Promise<boolean>(() => {}) });
  await t.rejects(b.connect({ address: a.virtualIp, port: 83 }), { code: 'ERR_TIMEOUT' });

  // Accept after a deny on the same relay: the listener decides per request.
  let allow = false;
  const server = await a.listen(84, { accept: () => allow });
  await t.rejects(b.connect({ address: a.virtualIp, port: 84 }), { code: 'ERR_CONNECTION_REFUSED' });
  allow = true;
  const conn = await b.connect({ address: a.virtualIp, port: 84 });
  const accepted = await server.accept();
  t.equal(accepted.remotePort, conn.localPort);
});

t.test('ERR_TIMEOUT from the client\'s own request timeout', async (t) => {
  // A fake relay that answers Hello and then never answers anything.
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      socket.write(Buffer.from([0, 0, 0, 19, 2, 0, 1, 10, 0, 0, 9, 0, 0, 0x3a, 0x98, 0, 0, 0xaf, 0xc8, 0, 4, 0, 0]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const client = await connect({ host: '127.0.0.1', port, requestTimeoutMs: 50 });
  t.teardown(() => client.close());
  t.equal(client.virtualIp, '10.0.0.9');
  await t.rejects(client.socket().bind(5), { code: 'ERR_TIMEOUT', message: /bind 5: no answer from the relay within 50 ms/ });
});

t.test('ERR_ADDRESS_IN_USE, ERR_SOCKET_STATE, ERR_INVALID_ARGUMENT', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const first = a.socket();
  t.equal(await first.bind(90), 90);
  const second = a.socket();
  await t.rejects(second.bind(90), { code: 'ERR_ADDRESS_IN_USE', message: /port 90 of 10\.0\.\d+\.\d+ is already bound/ });
  t.equal(second.state, 'idle');
  await t.rejects(first.bind(91), { code: 'ERR_SOCKET_STATE' });
  await t.rejects(a.socket().bind(70000), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(a.connect({ address: 'nope', port: 1 }), { code: 'ERR_INVALID_ARGUMENT' });
  // Closing frees the port for another socket.
  first.close();
  t.equal(await second.bind(90), 90);
});

t.test('ERR_CLOSED_BY_PEER and ERR_CLOSED_BY_RELAY', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(7);
  const conn = await b.connect({ address: a.virtualIp, port: 7 });
  const accepted = await server.accept();
  const closed = new Promise((resolve) => conn.on('close', resolve));
  accepted.close();
  t.equal(await closed, undefined, 'a peer close is a clean end for the reader');
  t.equal(await conn.read(), null);
  await t.rejects(conn.send(bytes), { code: 'ERR_CLOSED_BY_PEER', message: /closed the connection/ });

  // The peer's whole client leaves: PeerDisconnected.
  const conn2 = await b.connect({ address: a.virtualIp, port: 7 });
  await server.accept();
  const failed = new Promise((resolve) => conn2.on('close', resolve));
  await a.close();
  t.match(await failed, { code: 'ERR_CLOSED_BY_PEER', message: /disconnected from the relay/ });
  await t.rejects(conn2.read(), { code: 'ERR_CLOSED_BY_PEER' });

  // The relay closes a pair itself (here: it shuts down) with its reason.
  const c = await clientFor(t, relay, 4);
  const server2 = await c.listen(8);
  const conn3 = await b.connect({ address: c.virtualIp, port: 8 });
  await server2.accept();
  const byRelay = new Promise((resolve) => conn3.on('close', resolve));
  await relay.close();
  t.match(await byRelay, { code: 'ERR_CLOSED_BY_RELAY', reason: 'RelayShutdown', message: /RelayShutdown/ });
});

t.test('ERR_RELAY_LOST: the relay disappears; pending requests and sockets fail', async (t) => {
  const relay = await relayFor(t, { requestTimeoutMs: 5_000 });
  const proxy = await cuttableProxy(t, relay);
  const a = await clientFor(t, proxy, 2);
  const b = await clientFor(t, proxy, 3);
  const listener = await a.listen(7, { accept: () => new Promise<boolean>(() => {}) });
  const pending = b.connect({ address: a.virtualIp, port: 7 });
  const accepting = listener.accept();
  // Sever both TCP connections without the relay's goodbye.
  const states: string[] = [];
  b.actor.subscribe((s) => states.push(String(s.value)));
  proxy.cut();
  // Two clients, two sockets: either may learn of the loss first.
  await Promise.all([t.rejects(pending, { code: 'ERR_RELAY_LOST' }), t.rejects(accepting, { code: 'ERR_RELAY_LOST' })]);
  t.equal(b.state, 'closed');
  t.ok(states.includes('closed'));
  t.equal(b.actor.getSnapshot().context.error?.code, 'ERR_RELAY_LOST');
  t.throws(() => b.socket(), { code: 'ERR_CLIENT_CLOSED' });
});

