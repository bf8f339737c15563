/**
 * A WebSocket message under way is a frame under way (docs/RELAY.md "Bounds"): ws hands the
 * relay only whole messages, so the bytes of an unfinished one sit in ws's receiver, up to the
 * port's message limit (the largest frame plus slack). They count toward the incomplete-frame
 * budget and run the frame timeout as a TCP frame's bytes do (specs/relay/trickle.stress.ts is
 * the TCP side): a message trickled, or sent as fragments that never end, is closed with
 * Error(FrameTimeout); many from one IP are held to that host's budget; and a whole message
 * leaves nothing counted.
 */
import type net from 'node:net';
import t from 'tap';
import { ErrorCode, PacketType, PROTOCOL_VERSION, encodePacket, type Packet } from '../../protocol/index.ts';
import { WS_MAX_PAYLOAD_SLACK_BYTES } from '../../actors/relay/index.ts';
import { PRE_HELLO_MAX_FRAME_BYTES } from '../../actors/relay/connection.ts';
import { frameHeader } from '../helpers/raw-client.ts';
import { RawWsClient } from '../helpers/ws-raw-client.ts';
import { relayFor } from '../client/fixtures.ts';
import { waiter, within } from '../observe/wait.ts';

/** A full-size data frame, as one binary WebSocket message. */
const MESSAGE_BYTES = 200 * 1024;

/**
 * The TCP socket under a raw client's WebSocket (ws's `_socket`, internal): the attack writes
 * a message's frame itself, its header first and its payload as it pleases.
 */
function socketOf(client: RawWsClient): net.Socket {
  return (client.ws as unknown as { _socket: net.Socket })._socket;
}

/** A client-to-server binary frame header (RFC 6455 §5.2): FIN, 64-bit length, a zero mask. */
function wsBinaryHeader(payloadBytes: number): Uint8Array {
  const head = new Uint8Array(14);
  head[0] = 0x82;
  head[1] = 0x80 | 127;
  new DataView(head.buffer).setUint32(6, payloadBytes);
  return head;
}

/** The start of the message's payload: an ArbitraryData frame filling it, and its connection id. */
function frameStart(): Uint8Array {
  return Uint8Array.from([...frameHeader(PacketType.ArbitraryData, MESSAGE_BYTES - 4), 0, 0, 0, 1]);
}

function errorOf(packet: Packet): Extract<Packet, { type: typeof PacketType.Error }> {
  return packet as Extract<Packet, { type: typeof PacketType.Error }>;
}

t.test('a message trickled, or fragments that never end, is closed at the frame timeout; a whole message leaves nothing counted', async (t) => {
  const frameTimeoutMs = 500;
  const relay = await relayFor(t, { websocket: { port: 0 }, frameTimeoutMs });
  const url = relay.websocket!.url;

  // A frame split over two messages, then a Ping: read whole, nothing left counted.
  const { client: fine } = await RawWsClient.hello(url, { localAddress: '127.0.0.2' });
  t.teardown(() => fine.ws.terminate());
  const ping = encodePacket({ type: PacketType.Ping, nonce: 5 });
  fine.send(ping.subarray(0, 3));
  fine.send(ping.subarray(3));
  t.match(await fine.next(PacketType.Pong), { nonce: 5 });
  t.equal(relay.counters.partialFrameBytes, 0, 'whole messages leave no incomplete bytes counted');

  // One frame of one message, its header declaring 200 KiB and its payload trickled.
  const { client: trickler } = await RawWsClient.hello(url, { localAddress: '127.0.0.3', autoPong: false });
  const raw = socketOf(trickler);
  raw.write(wsBinaryHeader(MESSAGE_BYTES));
  raw.write(frameStart());
  raw.write(new Uint8Array(4096));
  const trickle = setInterval(() => raw.destroyed || raw.write(new Uint8Array(16)), 50);
  t.teardown(() => clearInterval(trickle));
  const since = Date.now();
  const error = errorOf(await trickler.next(PacketType.Error, 5_000));
  t.equal(error.code, ErrorCode.FrameTimeout, 'the trickled message ends in Error(FrameTimeout), as a trickled TCP frame does');
  t.match(error.message, new RegExp(`did not complete within ${frameTimeoutMs} ms \\((\\d+) bytes of it arrived\\)`));
  t.ok(Number(/\((\d+) bytes/.exec(error.message)![1]) >= 14 + 9 + 4096, 'the bytes counted are those ws held');
  t.ok(Date.now() - since >= frameTimeoutMs - 50, 'not before the frame timeout');
  await within('the trickler is closed', trickler.closed);
  clearInterval(trickle);

  // Fragments of one binary message (each a whole WebSocket frame), the final one never sent.
  const { client: fragments } = await RawWsClient.hello(url, { localAddress: '127.0.0.4', autoPong: false });
  fragments.ws.send(frameStart(), { binary: true, fin: false });
  const more = setInterval(() => fragments.ws.readyState === fragments.ws.OPEN && fragments.ws.send(new Uint8Array(1024), { fin: false }), 50);
  t.teardown(() => clearInterval(more));
  t.equal(errorOf(await fragments.next(PacketType.Error, 5_000)).code, ErrorCode.FrameTimeout, 'a message whose fragments never end, too');
  await within('the fragment sender is closed', fragments.closed);
  clearInterval(more);

  t.equal(relay.counters.frameTimeouts, 2);
  const released = waiter();
  relay.bus.on('client.disconnected', released.wake);
  await released.until('both are released', () => relay.status().clients.length === 1);
  t.equal(relay.counters.partialFrameBytes, 0, 'nothing is kept for closed connections');
});

t.test('messages under way from one IP are held to its incomplete-frame budget, then time out', async (t) => {
  const BUDGET = 64 * 1024;
  const CONNECTIONS = 6;
  const SENT_EACH = 150 * 1024;
  const relay = await relayFor(t, { websocket: { port: 0 }, maxPartialFrameBytesPerHost: BUDGET, frameTimeoutMs: 1_500 });
  const clients: RawWsClient[] = [];
  for (let i = 0; i < CONNECTIONS; i++) clients.push((await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.2', autoPong: false })).client);
  t.teardown(() => {
    for (const client of clients) client.ws.terminate();
  });
  const errors = clients.map((client) => client.next(PacketType.Error, 15_000));
  for (const client of clients) {
    const raw = socketOf(client);
    raw.write(wsBinaryHeader(MESSAGE_BYTES));
    raw.write(frameStart());
    for (let sent = 0; sent < SENT_EACH; sent += 8 * 1024) raw.write(new Uint8Array(8 * 1024));
  }
  const held: number[] = [];
  for (const packet of await Promise.all(errors)) {
    const error = errorOf(packet);
    t.equal(error.code, ErrorCode.FrameTimeout, 'each held message times out');
    held.push(Number(/\((\d+) bytes of it arrived\)/.exec(error.message)?.[1]));
  }
  // What each connection's Error says the relay held of its message when it timed out: each may
  // overshoot by one TCP read (64 KiB) before it is paused, and no more than was sent.
  const total = held.reduce((sum, bytes) => sum + bytes, 0);
  const bound = BUDGET + CONNECTIONS * 64 * 1024;
  t.ok(total <= bound, `${total} bytes held in all (${held.join(', ')}), at most ${bound}`);
  t.ok(total < CONNECTIONS * SENT_EACH, `less than the ${CONNECTIONS * SENT_EACH} bytes sent`);
  t.ok(relay.counters.partialFramePauses > 0, 'connections were held back by the budget');
  const released = waiter();
  relay.bus.on('client.disconnected', released.wake);
  await released.until('all are released', () => relay.status().clients.length === 0);
  t.equal(relay.counters.partialFrameBytes, 0, 'the budget is free again');
});

t.test('before Hello, a message longer than a Hello-sized frame plus slack is refused at its header with Error(FrameTooLarge)', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const client = await RawWsClient.open(relay.websocket!.url, { localAddress: '127.0.0.2', autoPong: false });
  t.teardown(() => client.ws.terminate());
  // Only the header and the start of the payload: ws would hold the rest for as long as it trickled.
  const raw = socketOf(client);
  raw.write(wsBinaryHeader(MESSAGE_BYTES));
  raw.write(frameStart());
  const error = errorOf(await client.next(PacketType.Error, 5_000));
  t.equal(error.code, ErrorCode.FrameTooLarge, 'the reason a TCP frame over the Hello-sized limit gets');
  t.match(error.message, new RegExp(`WebSocket message of ${MESSAGE_BYTES} bytes exceeds the limit of ${PRE_HELLO_MAX_FRAME_BYTES + WS_MAX_PAYLOAD_SLACK_BYTES} bytes`));
  await within('the WebSocket closes', client.closed);
  const hello = await RawWsClient.open(relay.websocket!.url, { localAddress: '127.0.0.3', autoPong: false });
  t.teardown(() => hello.ws.terminate());
  hello.send(encodePacket({ type: PacketType.Hello, version: PROTOCOL_VERSION }));
  t.ok(await hello.next(PacketType.VirtualIp), 'Hello in its own message is answered');
});
