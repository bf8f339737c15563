/**
 * A slow consumer over WebSocket (issue 14: "the same limits … and backpressure"), mirroring the
 * TCP ones (specs/relay/abuse.stress.ts, fan-in.stress.ts): a WebSocket client that stops reading
 * its socket makes the relay hold no more than its high-water mark for it — the sender is paused
 * instead — while a bystander pair keeps exchanging checked bytes, and when it takes nothing for
 * the slow-consumer timeout it is dropped (SlowConsumer) and its sender stays, also when the
 * keepalive pings it meanwhile (a Ping's WebSocket header is no progress); one that floods
 * Pings and reads nothing is read no further than its replies' mark and, once it reads, gets every
 * Pong in order. And backpressure is
 * end to end over wss: a sender to a receiver that stops reading is held by the receiver's window,
 * the relay queues no more than that window for it, and every byte arrives intact when it reads.
 */
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { WebSocket } from 'ws';
import { SimulatedClock } from 'xstate';
import {
  CloseReason,
  ConnectionStatus,
  DEFAULT_MAX_FRAME_BYTES,
  ErrorCode,
  FrameDecoder,
  INITIAL_WINDOW_BYTES,
  PROTOCOL_VERSION,
  PacketType,
  decodeFrame,
  encodeArbitraryData,
  encodePacket,
  type Packet,
} from '../../protocol/index.ts';
import { connect } from '../../actors/client/index.ts';
import { clientFor, pseudoRandom, readAll, relayFor, sha256 } from '../client/fixtures.ts';
import { Bystander } from '../helpers/bystander.ts';
import { RawClient, nextId } from '../helpers/raw-client.ts';
import { WS_MAX_PAYLOAD_SLACK_BYTES } from '../../actors/relay/index.ts';
import { nextEvent } from '../helpers/relay-fixture.ts';
import { knownRelaysFile, makeIdentity } from '../helpers/tls-identity.ts';
import { RawWsClient } from '../helpers/ws-raw-client.ts';
import { waiter, within } from '../observe/wait.ts';

const HIGH_WATER_MARK_BYTES = 64 * 1024;
/** What one received TCP chunk may add past the mark before the source is paused (the frames in flight). */
const SLACK_BYTES = 256 * 1024;
const PAIRS = 12;

/** A pair from raw TCP client `a` (ephemeral port) to raw WebSocket client `b` listening on `port`. */
async function pairToWs(a: RawClient, aIp: number, b: RawWsClient, bIp: number, port: number): Promise<number> {
  const { port: aPort } = await a.bind(0);
  const requestId = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: aIp, port: aPort }, destination: { ip: bIp, port } });
  const request = (await b.next(PacketType.SocketConnectionRequest)) as Extract<Packet, { type: typeof PacketType.SocketConnectionRequest }>;
  b.send(encodePacket({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted }));
  const response = await a.next(PacketType.SocketConnectionResponse);
  if (response.status !== ConnectionStatus.Accepted) throw new Error(`pair to port ${port} refused: ${response.status}`);
  return response.connectionId;
}


/**
 * A (raw TCP, 127.0.0.2) and B (raw WebSocket, 127.0.0.3) on `relay`, with PAIRS connections from
 * A to ports 1000… bound by B: the sender and the receiver of the slow-consumer specs.
 */
async function tcpToWsPairs(t: Test, relay: Awaited<ReturnType<typeof relayFor>>) {
  const { client: a, virtualIp: aVip } = await RawClient.open({ port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => a.socket.destroy());
  const { client: b, ip: bIp } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.3' });
  t.teardown(() => b.ws.terminate());
  const aId = relay.status().clients.find((c) => c.realIp === '127.0.0.2')!.id;
  const bId = relay.status().clients.find((c) => c.realIp === '127.0.0.3')!.id;
  const ids: number[] = [];
  for (let i = 0; i < PAIRS; i++) {
    b.send(encodePacket({ type: PacketType.BindRequest, requestId: nextId(), port: 1000 + i }));
    await b.next(PacketType.BindResponse);
    ids.push(await pairToWs(a, aVip.ip, b, bIp, 1000 + i));
  }
  return { a, aVip, b, bIp, aId, bId, ids };
}


/**
 * The verdict on the stalled WebSocket receiver (127.0.0.3): released as a slow consumer, nobody
 * dropped as silent, and its sender A told its pair ended while it stays connected.
 */
async function droppedAsSlowConsumer(
  t: Test,
  relay: Awaited<ReturnType<typeof relayFor>>,
  a: RawClient,
  aId: number,
  dropped: Promise<{ realIp: string; reason: string }>,
): Promise<void> {
  const gone = await dropped;
  t.same([gone.realIp, gone.reason], ['127.0.0.3', 'SlowConsumer'], 'the stalled WebSocket receiver is the one dropped');
  t.equal(relay.counters.keepaliveTimeouts, 0, 'nobody was dropped as silent');
  const closed = await a.next(PacketType.SocketClosed, 10_000);
  t.equal(closed.reason, CloseReason.PeerDisconnected, 'the sender is told its pair ended with its peer');
  t.ok(relay.status().clients.some((c) => c.id === aId), 'the sender stays connected');
}

t.test('a WebSocket client that stops reading: the relay holds at most its mark for it, a bystander pair goes on, and it is dropped as a slow consumer', async (t) => {
  // Simulated time: the slow-consumer verdict comes when the spec moves the clock, never by chance
  // on a loaded machine; the keepalive is far off, so nobody is dropped as silent meanwhile.
  const clock = new SimulatedClock();
  const slowConsumerTimeoutMs = 5_000;
  const relay = await relayFor(t, {
    websocket: { port: 0 },
    clock,
    highWaterMarkBytes: HIGH_WATER_MARK_BYTES,
    slowConsumerTimeoutMs,
    keepaliveIntervalMs: 600_000,
    keepaliveTimeoutMs: 1_200_000,
  });
  const { a, aVip, b, aId, bId, ids } = await tcpToWsPairs(t, relay);
  const bystander = await Bystander.start(relay.port, '127.0.0.4', '127.0.0.5');
  t.teardown(() => bystander.stop().catch(() => {}));
  await bystander.advance(2);

  // B's socket is not read from now on: the kernel's buffers fill, then the relay's queue for B.
  b.ws.pause();
  const aPaused = new Promise<{ queuedBytes: number }>((resolve) =>
    relay.bus.on('flow.paused', (e) => {
      if (e.sourceId === aId && e.destinationId === bId) resolve(e);
    }),
  );
  // A full window on every pair: 12 MiB, far more than loopback's kernel buffers hold.
  const chunk = new Uint8Array(64 * 1024 - 9).fill(7);
  for (const id of ids) {
    for (let sent = 0; sent + chunk.length <= INITIAL_WINDOW_BYTES; sent += chunk.length) a.send(encodeArbitraryData(id, chunk));
  }
  const paused = await within('the relay to pause the sender for the stalled WebSocket receiver', aPaused);
  t.ok(paused.queuedBytes <= HIGH_WATER_MARK_BYTES + SLACK_BYTES, `paused with ${paused.queuedBytes} bytes queued for it`);

  // While B reads nothing, the bystander pair exchanges checked messages, and what the relay holds
  // for B stays at the mark: sampled after each of the bystander's round trips. (The sender may
  // be read again in between while the kernel's buffers still take bytes: paused, drained, paused.)
  let maxQueued = 0;
  const sample = (): void => {
    const status = relay.status();
    maxQueued = Math.max(maxQueued, status.clients.find((c) => c.id === bId)?.queuedBytes ?? 0, status.totals.queuedBytes);
  };
  for (let i = 0; i < 5; i++) {
    await bystander.advance(1);
    sample();
  }
  t.ok(bystander.rounds >= 7, `the bystander pair kept going (${bystander.rounds} round trips, each checked byte for byte)`);
  const sweeps = waiter();
  const ticker = setInterval(sweeps.wake, 5);
  t.teardown(() => clearInterval(ticker));
  // Once the kernel's buffers are full the sender stays held: the relay reads none of its bytes.
  await sweeps.until('the sender to be held for the stalled receiver', () => {
    sample();
    return relay.status().clients.find((c) => c.id === aId)?.paused === true && relay.status().clients.find((c) => c.id === bId)!.queuedBytes > 0;
  });
  t.ok(maxQueued <= HIGH_WATER_MARK_BYTES + SLACK_BYTES, `the relay held at most ${maxQueued} bytes for the stalled receiver (mark ${HIGH_WATER_MARK_BYTES}), of the ${PAIRS} MiB sent`);

  // It took nothing for the slow-consumer timeout while A waited: dropped, A told and kept.
  const dropped = nextEvent(relay.bus, 'client.disconnected');
  let moved = 0;
  await sweeps.until('the slow-consumer verdict', () => {
    if (relay.counters.slowConsumers > 0) return true;
    // A sweep at a time (SimulatedClock fires only timers due when it moves), up to twice the timeout.
    if (moved < 2 * slowConsumerTimeoutMs) {
      clock.increment(1_000);
      moved += 1_000;
    }
    return relay.counters.slowConsumers > 0;
  });
  await droppedAsSlowConsumer(t, relay, a, aId, dropped);
  // B hears why once it reads again.
  b.ws.resume();
  t.match(await b.next(PacketType.Error), { code: ErrorCode.SlowConsumer }, 'the receiver is told SlowConsumer');
  await bystander.advance(2);
  t.ok((await bystander.stop()) > 0, 'the bystander pair never failed');
});

t.test('a WebSocket client that stops reading is dropped as a slow consumer though the keepalive pings it meanwhile', async (t) => {
  // The keepalive interval is well under the slow-consumer timeout: every Ping the relay queues
  // for the stalled receiver adds its WebSocket header to the socket's queue besides its bytes,
  // which once read as the receiver having taken something and restarted its timer for ever.
  // Simulated time, so the verdict comes as the spec moves the clock; the keepalive timeout is
  // far off, so the receiver is not dropped as silent instead.
  const clock = new SimulatedClock();
  const slowConsumerTimeoutMs = 5_000;
  const keepaliveIntervalMs = 1_000;
  const relay = await relayFor(t, {
    websocket: { port: 0 },
    clock,
    highWaterMarkBytes: HIGH_WATER_MARK_BYTES,
    slowConsumerTimeoutMs,
    keepaliveIntervalMs,
    keepaliveTimeoutMs: 600_000,
  });
  const { a, aVip, b, aId, bId, ids } = await tcpToWsPairs(t, relay);
  // B reads nothing from now on; A sends a full window on every pair, far more than the kernel's buffers take.
  b.ws.pause();
  const chunk = new Uint8Array(64 * 1024 - 9).fill(7);
  for (const id of ids) {
    for (let sent = 0; sent + chunk.length <= INITIAL_WINDOW_BYTES; sent += chunk.length) a.send(encodeArbitraryData(id, chunk));
  }
  const sweeps = waiter();
  const ticker = setInterval(sweeps.wake, 5);
  t.teardown(() => clearInterval(ticker));
  await sweeps.until('the sender to be held for the stalled WebSocket receiver', () => {
    const status = relay.status();
    return status.clients.find((c) => c.id === aId)?.paused === true && status.clients.find((c) => c.id === bId)!.queuedBytes > 0;
  });
  // The relay's clock moves a keepalive interval at a time (each a sweep or two, and a Ping for B)
  // up to three times the slow-consumer timeout; the verdict must come within the timeout and a sweep.
  const dropped = nextEvent(relay.bus, 'client.disconnected');
  let moved = 0;
  // The sweep runs as the clock moves, so once it has moved that far the verdict is in or never comes.
  await sweeps.until('the slow-consumer verdict, or the clock moved three timeouts', () => {
    if (relay.counters.slowConsumers > 0 || moved >= 3 * slowConsumerTimeoutMs) return true;
    clock.increment(keepaliveIntervalMs / 2);
    moved += keepaliveIntervalMs / 2;
    return relay.counters.slowConsumers > 0;
  });
  t.equal(relay.counters.slowConsumers, 1, `the stalled receiver is found a slow consumer (the relay's clock moved ${moved} ms)`);
  if (relay.counters.slowConsumers === 0) return;
  t.ok(moved <= slowConsumerTimeoutMs + keepaliveIntervalMs, `within the timeout and a sweep (${moved} ms, timeout ${slowConsumerTimeoutMs} ms)`);
  await droppedAsSlowConsumer(t, relay, a, aId, within('the stalled receiver to be released', dropped));
  // Once it reads again B finds the keepalive's Pings the relay queued meanwhile, then why it was dropped.
  b.ws.resume();
  await b.next(PacketType.Ping);
  await b.next(PacketType.Ping);
  t.pass('the relay pinged the receiver (twice at least) while it read nothing');
  t.match(await b.next(PacketType.Error), { code: ErrorCode.SlowConsumer }, 'the receiver is told SlowConsumer');
});

t.test('backpressure end to end over wss: a sender to a receiver that stops reading is held at its window, and every byte arrives when it reads', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0 }, highWaterMarkBytes: HIGH_WATER_MARK_BYTES });
  const known = await knownRelaysFile(t);
  // The receiver over wss, a library client whose application does not read for a while.
  const receiver = await connect({ url: relay.websocket!.url, localAddress: '127.0.0.2', tls: { knownRelaysFile: known } });
  t.teardown(() => receiver.close());
  const sender = await clientFor(t, relay, 3, { tls: { knownRelaysFile: known } });
  const listener = await receiver.listen(7);
  const accepting = listener.accept();
  const outgoing = await sender.connect({ address: receiver.virtualIp, port: 7 });
  const incoming = await accepting;

  const payload = pseudoRandom(33, 8 * INITIAL_WINDOW_BYTES);
  let settled = false;
  const sent = outgoing.send(payload).then(() => (settled = true));
  // Held: the relay carries the receiver's first window, and the sender gets no more credit (a
  // receiver grants it back only as its application takes bytes, §7), so send() cannot settle.
  const carried = waiter();
  const poll = setInterval(carried.wake, 5);
  t.teardown(() => clearInterval(poll));
  const bytesToReceiver = (): number => relay.status().pairs[0]?.bytesAToB ?? 0;
  await carried.until('the first window to cross the relay', () => bytesToReceiver() >= INITIAL_WINDOW_BYTES);
  t.equal(settled, false, 'send() of 8 windows is still held while the receiver reads nothing');
  t.ok(bytesToReceiver() <= INITIAL_WINDOW_BYTES, `the relay carried no more than the window (${bytesToReceiver()} bytes)`);
  const queued = relay.status().clients.find((c) => c.realIp === '127.0.0.2')?.queuedBytes ?? 0;
  t.ok(queued <= INITIAL_WINDOW_BYTES, `and queues at most that for the receiver (${queued})`);

  // Reading again: the rest follows, intact and in order.
  const [got] = await Promise.all([readAll(incoming, 60_000), within('send() to settle', sent.then(() => outgoing.end()), 60_000)]);
  t.equal(got.length, payload.length, 'every byte arrived');
  t.equal(sha256(got), sha256(payload), 'intact and in order (SHA-256)');
});

t.test('a WebSocket client that floods Pings and reads nothing is held back, bounded, and loses no Pong; a bystander pair goes on', async (t) => {
  // Real time, keepalive far off: the relay's own Ping would land among the Pongs.
  const relay = await relayFor(t, { websocket: { port: 0 }, highWaterMarkBytes: HIGH_WATER_MARK_BYTES, keepaliveIntervalMs: 600_000, keepaliveTimeoutMs: 1_200_000 });
  const flooder = new WebSocket(relay.websocket!.url, { perMessageDeflate: false, localAddress: '127.0.0.2' });
  t.teardown(() => flooder.terminate());
  flooder.on('error', () => {});
  // Pongs are counted, not kept: 1.2 million packet objects would weigh more than the test.
  let hello = false;
  let pongs = 0;
  let outOfOrder = 0;
  const counted = waiter();
  const decoder = new FrameDecoder((type, frame) => {
    if (type === PacketType.VirtualIp) hello = true;
    else if (type === PacketType.Pong) {
      const packet = decodeFrame(frame) as Extract<Packet, { type: typeof PacketType.Pong }>;
      if (packet.nonce !== pongs) outOfOrder++;
      pongs++;
    }
    counted.wake();
  });
  flooder.on('message', (data: Buffer) => decoder.push(data));
  await within('the flooder to open', once(flooder, 'open'));
  flooder.send(encodePacket({ type: PacketType.Hello, version: PROTOCOL_VERSION }));
  await counted.until('VirtualIP for the flooder', () => hello);
  const flooderId = relay.status().clients.find((c) => c.realIp === '127.0.0.2')!.id;

  // It stops reading, then sends 1.2 million Pings (10.8 MB, far more than loopback's kernel
  // buffers take) in messages just under the relay's largest.
  flooder.pause();
  const paused = new Promise<void>((resolve) =>
    relay.bus.on('flow.paused', (e) => {
      if (e.sourceId === flooderId && e.destinationId === flooderId) resolve();
    }),
  );
  const PINGS = 1_200_000;
  const PER_MESSAGE = 28_000;
  for (let first = 0; first < PINGS; first += PER_MESSAGE) {
    const count = Math.min(PER_MESSAGE, PINGS - first);
    const message = new Uint8Array(count * 9);
    for (let i = 0; i < count; i++) message.set(encodePacket({ type: PacketType.Ping, nonce: first + i }), i * 9);
    flooder.send(message);
  }
  await within('the relay to stop reading the flooder for its own replies', paused);

  // While it reads nothing, a bystander pair goes on, and the relay's queue for it stays near the mark.
  const bystander = await Bystander.start(relay.port, '127.0.0.4', '127.0.0.5');
  t.teardown(() => bystander.stop().catch(() => {}));
  let maxQueued = 0;
  for (let i = 0; i < 5; i++) {
    await bystander.advance(1);
    const status = relay.status();
    maxQueued = Math.max(maxQueued, status.clients.find((c) => c.id === flooderId)?.queuedBytes ?? 0, status.totals.queuedBytes);
  }
  // A WebSocket message is the unit the relay reads (a TCP read over TCP): the replies to the one
  // under way when it is paused may pass the mark by up to one message's worth.
  const oneMessage = DEFAULT_MAX_FRAME_BYTES + WS_MAX_PAYLOAD_SLACK_BYTES;
  t.ok(maxQueued <= HIGH_WATER_MARK_BYTES + oneMessage, `the relay queued at most ${maxQueued} bytes for the flooder (mark ${HIGH_WATER_MARK_BYTES}, plus one message of at most ${oneMessage})`);
  t.equal(pongs, 0, 'nothing was read meanwhile');

  // Reading again: every Pong arrives, in order.
  flooder.resume();
  await counted.until('a Pong for every Ping', () => pongs === PINGS, 120_000);
  t.equal(pongs, PINGS, 'a Pong for every Ping');
  t.equal(outOfOrder, 0, 'all Pongs in order');
  await bystander.advance(1);
  t.ok((await bystander.stop()) > 0, 'the bystander pair never failed');
});
