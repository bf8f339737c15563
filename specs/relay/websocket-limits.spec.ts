/**
 * The WebSocket port's limits (docs/RELAY.md "WebSocket"): the per-IP cap counts WebSocket and
 * TCP connections together; the Hello timeout holds (simulated time); a page from an origin not
 * allowed is refused; a text message is a protocol error the client hears as
 * Error(MalformedFrame) with a clear message; a message over the relay's largest frame plus
 * slack is refused by WebSocket close code 1009 (specs/client/web-socket-transport.spec.ts: the
 * client library reports it in words); a connection that says nothing before its upgrade is
 * closed after the Hello timeout of silence, on ws and on wss.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { SimulatedClock } from 'xstate';
import { ErrorCode, PacketType, encodePacket, PROTOCOL_VERSION } from '../../protocol/index.ts';
import { connect, RelayRejectedError } from '../../actors/client/index.ts';
import { WS_MAX_PAYLOAD_SLACK_BYTES } from '../../actors/relay/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { RawWsClient } from '../helpers/ws-raw-client.ts';
import { within } from '../observe/wait.ts';
import { makeIdentity } from '../helpers/tls-identity.ts';

t.test('maxConnectionsPerIp counts WebSocket and TCP connections of one IP together', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 }, maxConnectionsPerIp: 2 });
  const url = relay.websocket!.url;
  await clientFor(t, relay, 2);
  const overWs = await connect({ url, localAddress: '127.0.0.2' });
  t.teardown(() => overWs.close());
  const third = await connect({ url, localAddress: '127.0.0.2' }).catch((error: unknown) => error);
  t.type(third, RelayRejectedError, 'a third connection over WebSocket is refused');
  t.match((third as Error).message, /TooManyClients.*127\.0\.0\.2 already has 2 connections/);
  const overTcp = await connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.2' }).catch((error: unknown) => error);
  t.type(overTcp, RelayRejectedError, 'and so is a third over TCP');
  // Another IP is not affected.
  const other = await connect({ url, localAddress: '127.0.0.3' });
  t.teardown(() => other.close());
  t.equal(other.state, 'connected');
  t.equal(relay.counters.clientsRejected, 2);
});

t.test('a text message ends the connection with Error(MalformedFrame) naming the cause', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const { client } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.2' });
  client.send('hello relay');
  const error = await client.next(PacketType.Error);
  t.match(error, { type: PacketType.Error, code: ErrorCode.MalformedFrame, message: /text WebSocket message.*binary messages/ });
  t.equal((await within('the WebSocket closes after the Error', client.closed)).code, 1000);
});

t.test('a text message before Hello is refused the same way', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const client = await RawWsClient.open(relay.websocket!.url, { localAddress: '127.0.0.2' });
  client.send(String.fromCharCode(0, 0, 0, 2, 1, PROTOCOL_VERSION));
  t.match(await client.next(PacketType.Error), { code: ErrorCode.MalformedFrame, message: /text WebSocket message/ });
  await within('the WebSocket closes', client.closed);
});

t.test('a message larger than the largest frame plus slack is refused with close code 1009', async (t) => {
  const maxFrameBytes = 64 * 1024;
  const relay = await relayFor(t, { websocket: { port: 0 }, maxFrameBytes });
  const { client } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.2' });
  const disconnected = new Promise((resolve) => relay.bus.once('client.disconnected', resolve));
  client.send(new Uint8Array(maxFrameBytes + WS_MAX_PAYLOAD_SLACK_BYTES + 1));
  const closed = await within('the relay closes the WebSocket', client.closed);
  t.equal(closed.code, 1009, 'close code 1009: message too big');
  await within('the relay releases the client', disconnected);
  t.equal(relay.status().clients.length, 0);
  // A message of exactly the limit is taken (here: a frame split over messages is fine too).
  const { client: fine } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.3' });
  t.teardown(() => fine.ws.terminate());
  const ping = encodePacket({ type: PacketType.Ping, nonce: 7 });
  fine.send(ping.subarray(0, 3));
  fine.send(ping.subarray(3));
  t.match(await fine.next(PacketType.Pong), { nonce: 7 }, 'a frame split across messages is read whole');
});

t.test('a WebSocket that never says Hello gets Error(HelloTimeout) at the hello timeout (simulated time)', async (t) => {
  const clock = new SimulatedClock();
  const helloTimeoutMs = 10_000;
  const relay = await relayFor(t, { websocket: { port: 0 }, clock, helloTimeoutMs });
  const client = await RawWsClient.open(relay.websocket!.url, { localAddress: '127.0.0.2' });
  t.teardown(() => client.ws.terminate());
  t.equal(relay.status().clients.length, 1, 'the WebSocket is a client of the relay before Hello');
  clock.increment(helloTimeoutMs - 1);
  t.equal(client.packets.length, 0, 'nothing before the timeout');
  clock.increment(1);
  t.match(await client.next(PacketType.Error), { code: ErrorCode.HelloTimeout });
  t.equal((await within('the WebSocket closes', client.closed)).code, 1000);
  t.equal(relay.status().clients.length, 0, 'and is released');
});

t.test("a page from another origin is refused (403) unless allowed; the relay's own pages and non-browsers are not", async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0, allowOrigins: ['https://game.example'] } });
  const url = relay.websocket!.url;
  const refused = await RawWsClient.open(url, { localAddress: '127.0.0.2', headers: { origin: 'https://evil.example' } }).catch((error: unknown) => error);
  t.match(refused, { message: /Unexpected server response: 403/ }, 'another origin: 403');
  t.equal(relay.status().clients.length, 0, 'and never a client');
  for (const [what, headers] of [
    ['an allowed origin', { origin: 'https://GAME.example/' }],
    ["the relay's own page", { origin: `http://127.0.0.1:${relay.websocket!.port}` }],
    ['no Origin (not a browser)', {}],
  ] as const) {
    const { client } = await RawWsClient.hello(url, { localAddress: '127.0.0.2', headers });
    t.pass(`${what}: admitted`);
    client.ws.terminate();
  }
  const anyOrigin = await relayFor(t, { websocket: { port: 0, allowOrigins: ['*'] } });
  const { client } = await RawWsClient.hello(anyOrigin.websocket!.url, { localAddress: '127.0.0.2', headers: { origin: 'https://evil.example' } });
  t.pass("'*' admits any origin");
  client.ws.terminate();
});

t.test('a connection to the WebSocket port that says nothing is closed after the Hello timeout of silence (ws and wss)', async (t) => {
  const helloTimeoutMs = 300;
  const identity = await makeIdentity(t);
  const plain = await relayFor(t, { websocket: { port: 0 }, helloTimeoutMs });
  const secure = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0 }, helloTimeoutMs });
  for (const [name, relay] of [['ws', plain], ['wss', secure]] as const) {
    const { host, port } = relay.websocket!;
    const socket = name === 'ws' ? net.connect({ host, port, localAddress: '127.0.0.2' }) : tls.connect({ host, port, localAddress: '127.0.0.2', rejectUnauthorized: false } as tls.ConnectionOptions);
    t.teardown(() => socket.destroy());
    socket.on('error', () => {});
    const closed = once(socket, 'close');
    await within(`${name}: connected`, once(socket, name === 'ws' ? 'connect' : 'secureConnect'));
    const since = Date.now();
    await within(`${name}: the relay closes the silent connection`, closed);
    const held = Date.now() - since;
    // Timers never fire early: a close well before 300 ms would be something else cutting it.
    t.ok(held >= 250, `${name}: held until ${helloTimeoutMs} ms of silence (${held} ms), then closed`);
    t.equal(relay.counters.clientsTotal, 0, `${name}: never a client`);
  }
  // A client that upgrades is not cut by it: the upgrade clears the timer, the keepalive rules.
  const { client } = await RawWsClient.hello(plain.websocket!.url, { localAddress: '127.0.0.3' });
  t.teardown(() => client.ws.terminate());
  const ping = encodePacket({ type: PacketType.Ping, nonce: 9 });
  // Time passing is the point here, not a synchronisation: nothing is waited for but the clock.
  await new Promise((resolve) => setTimeout(resolve, 2 * helloTimeoutMs));
  client.send(ping);
  t.match(await client.next(PacketType.Pong), { nonce: 9 }, 'an upgraded client silent for twice that is still served');
});
