/**
 * The relay's WebSocket port (docs/RELAY.md "WebSocket"): a Node client over WebSocket and one
 * over TCP move 5 MiB each way intact with half-close; a WebSocket receiver that stops reading
 * holds its sender back at the relay's high-water mark and gets every byte once it reads; the
 * keepalive runs over WebSocket as over TCP (simulated time).
 */
import t from 'tap';
import { SimulatedClock } from 'xstate';
import {
  CloseReason,
  ConnectionStatus,
  ErrorCode,
  PacketType,
  SocketStatus,
  encodePacket,
  type Packet,
} from '../../protocol/index.ts';
import { connect } from '../../actors/client/index.ts';
import { clientFor, openPair, pseudoRandom, readAll, relayFor, sha256 } from '../client/fixtures.ts';
import { RawWsClient } from '../helpers/ws-raw-client.ts';
import { within, waiter } from '../observe/wait.ts';

const MIB = 1024 * 1024;

t.test('5 MiB each way between a WebSocket client and a TCP client, intact, with half-close', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const url = relay.websocket!.url;
  t.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/alphanet$/);
  const overWs = await connect({ url, localAddress: '127.0.0.2' });
  t.teardown(() => overWs.close());
  const overTcp = await clientFor(t, relay, 3);
  t.equal(overWs.relay, url, 'the client names the relay by its URL');
  t.match(overWs.virtualIp, /^10\.0\.\d+\.\d+$/);
  t.not(overWs.virtualIp, overTcp.virtualIp);

  for (const [name, server, client] of [
    ['WebSocket listens, TCP connects', overWs, overTcp],
    ['TCP listens, WebSocket connects', overTcp, overWs],
  ] as const) {
    const [outgoing, accepted] = await openPair(server, client, name.startsWith('WebSocket') ? 7 : 8);
    const up = pseudoRandom(11, 5 * MIB);
    const down = pseudoRandom(12, 5 * MIB);
    const [gotDown, gotUp] = await Promise.all([
      // Each side sends all, half-closes, and reads to the peer's end.
      (async () => {
        const reading = readAll(outgoing);
        await outgoing.send(up);
        await outgoing.end();
        return reading;
      })(),
      (async () => {
        const reading = readAll(accepted);
        await accepted.send(down);
        await accepted.end();
        return reading;
      })(),
    ]);
    t.equal(gotUp.length, up.length, `${name}: every byte up`);
    t.equal(sha256(gotUp), sha256(up), `${name}: up intact (SHA-256)`);
    t.equal(gotDown.length, down.length, `${name}: every byte down`);
    t.equal(sha256(gotDown), sha256(down), `${name}: down intact (SHA-256)`);
  }
  const ws = relay.status().clients.find((c) => c.realIp === '127.0.0.2');
  t.ok(ws, 'the WebSocket client is listed with its real IP');
});

t.test('a WebSocket receiver that stops reading holds the sender at the high-water mark, then gets every byte', async (t) => {
  const highWaterMarkBytes = 256 * 1024;
  const relay = await relayFor(t, { websocket: { port: 0 }, highWaterMarkBytes });
  const { client: raw, ip } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.2' });
  t.teardown(() => raw.ws.terminate());
  raw.send(encodePacket({ type: PacketType.BindRequest, requestId: 1, port: 9 }));
  t.match(await raw.next(PacketType.BindResponse), { status: 0, port: 9 });
  // The raw WebSocket client speaks bare protocol: no identity, no TLS inside the connection.
  const sender = await clientFor(t, relay, 3, { e2e: false });
  const vip = [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
  const connecting = sender.connect({ address: vip, port: 9 });
  const status = (await raw.next(PacketType.SocketStatusRequest)) as Extract<Packet, { type: typeof PacketType.SocketStatusRequest }>;
  raw.send(encodePacket({ type: PacketType.SocketStatusResponse, requestId: status.requestId, status: SocketStatus.Listening }));
  const request = (await raw.next(PacketType.SocketConnectionRequest)) as Extract<Packet, { type: typeof PacketType.SocketConnectionRequest }>;
  raw.send(encodePacket({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted }));
  const conn = await connecting;

  // The receiver's TCP socket is not read: the relay's queue for it fills and the sender is paused.
  raw.ws.pause();
  // Read in the handler: the kernel's buffers soon take the queue and the source reads again.
  const paused = new Promise<{ queuedBytes: number; sourcePaused: boolean | undefined }>((resolve) =>
    relay.bus.once('flow.paused', (e) => resolve({ queuedBytes: e.queuedBytes, sourcePaused: relay.status().clients.find((c) => c.realIp === '127.0.0.3')?.paused })),
  );
  const payload = pseudoRandom(21, 1 * MIB); // the initial window: sent without any WindowUpdate
  const sent = conn.send(payload);
  const event = await within('flow.paused for the WebSocket destination', paused);
  t.ok(event.queuedBytes >= highWaterMarkBytes, `paused with ${event.queuedBytes} bytes queued, past the mark`);
  t.equal(event.sourcePaused, true, 'the relay stopped reading the sender');
  t.ok(event.queuedBytes <= payload.length + 64 * 1024, 'what the relay queued for it stays within the window (nothing unbounded)');

  // Reading again: every byte arrives, in order.
  const resumed = new Promise((resolve) => relay.bus.once('flow.resumed', resolve));
  raw.ws.resume();
  await within('flow.resumed once the WebSocket receiver reads', resumed);
  await within('send() of the window', sent);
  const got: Uint8Array[] = [];
  let total = 0;
  while (total < payload.length) {
    const data = (await raw.next(PacketType.ArbitraryData)) as Extract<Packet, { type: typeof PacketType.ArbitraryData }>;
    t.equal(data.connectionId, request.connectionId);
    got.push(data.data.slice());
    total += data.data.length;
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const piece of got) {
    all.set(piece, offset);
    offset += piece.length;
  }
  t.equal(sha256(all), sha256(payload), 'the held megabyte arrived intact');
});

t.test('keepalive over WebSocket: a client that answers stays, a silent one is dropped (simulated time)', async (t) => {
  const clock = new SimulatedClock();
  const keepaliveIntervalMs = 15_000;
  const keepaliveTimeoutMs = 45_000;
  const relay = await relayFor(t, { websocket: { port: 0 }, clock, keepaliveIntervalMs, keepaliveTimeoutMs });
  const url = relay.websocket!.url;
  const answering = await connect({ url, localAddress: '127.0.0.2' });
  t.teardown(() => answering.close());
  const { client: silent } = await RawWsClient.hello(url, { localAddress: '127.0.0.3', autoPong: false });
  t.teardown(() => silent.ws.terminate());

  const pongs = waiter();
  const framesIn = (): number => relay.counters.framesIn;
  const poll = setInterval(pongs.wake, 5);
  t.teardown(() => clearInterval(poll));
  // Six intervals (90 s): the library client answers each Ping over its WebSocket.
  for (let i = 1; i <= 6; i++) {
    const before = framesIn();
    clock.increment(keepaliveIntervalMs);
    if (i === 1) t.equal((await silent.next(PacketType.Ping)).type, PacketType.Ping, 'pinged over WebSocket');
    await pongs.until(`Pong ${i} from the WebSocket client`, () => framesIn() > before);
  }
  t.equal(relay.counters.keepaliveTimeouts, 1, 'the silent WebSocket client was dropped');
  t.match(await silent.next(PacketType.Error), { type: PacketType.Error, code: ErrorCode.KeepaliveTimeout });
  t.equal((await within('the silent client closed', silent.closed)).code, 1000, 'closed normally after the Error');
  t.equal(answering.state, 'connected', 'the answering WebSocket client is still connected');
  t.equal(relay.status().clients.length, 1);
});

t.test('a stopping relay says goodbye over WebSocket as over TCP: SocketClosed(RelayShutdown), then Error(RelayShuttingDown)', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const { client: raw, ip } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.2' });
  t.teardown(() => raw.ws.terminate());
  raw.send(encodePacket({ type: PacketType.BindRequest, requestId: 1, port: 9 }));
  await raw.next(PacketType.BindResponse);
  // The raw WebSocket client speaks bare protocol: no identity, no TLS inside the connection.
  const peer = await clientFor(t, relay, 3, { e2e: false });
  const vip = [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
  const connecting = peer.connect({ address: vip, port: 9 });
  const status = (await raw.next(PacketType.SocketStatusRequest)) as Extract<Packet, { type: typeof PacketType.SocketStatusRequest }>;
  raw.send(encodePacket({ type: PacketType.SocketStatusResponse, requestId: status.requestId, status: SocketStatus.Listening }));
  const request = (await raw.next(PacketType.SocketConnectionRequest)) as Extract<Packet, { type: typeof PacketType.SocketConnectionRequest }>;
  raw.send(encodePacket({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted }));
  await connecting;
  const closing = relay.close();
  t.match(await raw.next(PacketType.SocketClosed), { connectionId: request.connectionId, reason: CloseReason.RelayShutdown });
  t.match(await raw.next(PacketType.Error), { code: ErrorCode.RelayShuttingDown });
  t.equal((await within('the WebSocket closes', raw.closed)).code, 1000, 'a normal close');
  await within('the relay stops', closing);
});
