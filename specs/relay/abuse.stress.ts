/**
 * Attacks on the relay's memory and fairness (docs/PROTOCOL.md §2, §7, §9): a client that floods
 * requests and reads no answers, a receiver that grants credit it never uses, a stalled receiver
 * holding a sender back, a connection that claims a huge frame before Hello, one IP taking every
 * slot. Each must leave the relay bounded and other clients working.
 */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import {
  CloseReason,
  ErrorCode,
  FrameDecoder,
  INITIAL_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  PacketType,
  decodeFrame,
  encodeArbitraryData,
  encodePacket,
  type Packet,
} from '../../protocol/index.ts';
import { helloSocket } from '../helpers/raw-client.ts';
import { nextEvent, pairUp, relayFixture } from '../helpers/relay-fixture.ts';

const HIGH_WATER_MARK_BYTES = 64 * 1024;

t.test('a client that floods Pings and reads nothing is held back, bounded, and loses no Pong', async (t) => {
  // Keepalive far off: on a loaded machine this test outlasts the default interval, and the
  // relay's own Ping would land among the Pongs.
  const { relay, open } = await relayFixture(t, {
    highWaterMarkBytes: HIGH_WATER_MARK_BYTES,
    keepaliveIntervalMs: 600_000,
    keepaliveTimeoutMs: 1_200_000,
  });
  const attacker = await helloSocket(relay.port, '127.0.0.2');
  t.teardown(() => attacker.destroy());
  attacker.pause();
  const attackerId = relay.status().clients[0].id;

  // Far more than loopback's kernel buffers can absorb, so the relay's own queue must fill.
  const PINGS = 1_200_000;
  const flood = new Uint8Array(PINGS * 9);
  for (let i = 0; i < PINGS; i++) flood.set(encodePacket({ type: PacketType.Ping, nonce: i }), i * 9);
  const paused = new Promise<void>((resolve) => {
    relay.bus.on('flow.paused', (e) => {
      if (e.sourceId === attackerId && e.destinationId === attackerId) resolve();
    });
  });
  attacker.write(flood);
  await paused;

  // While it stays held back, what the relay queues for it stays near the high-water mark.
  let maxQueued = 0;
  for (let i = 0; i < 20; i++) {
    const me = relay.status().clients.find((c) => c.id === attackerId);
    maxQueued = Math.max(maxQueued, me?.queuedBytes ?? 0);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.ok(maxQueued <= HIGH_WATER_MARK_BYTES + 256 * 1024, `relay queued at most ${maxQueued} bytes for the flooder`);

  // Others are unaffected meanwhile.
  const { client: a, virtualIp: aIp } = await open('127.0.0.3');
  const { client: b, virtualIp: bIp } = await open('127.0.0.4');
  const { connectionId } = await pairUp(a, aIp.ip, b, bIp.ip, 80);
  a.send(encodeArbitraryData(connectionId, new Uint8Array([1, 2, 3])));
  const data = await b.next(PacketType.ArbitraryData);
  t.same([...data.data], [1, 2, 3], 'a bystander pair still moves data');

  // When it reads again, every Pong arrives, in order.
  let expected = 0;
  let wrong = 0;
  const done = new Promise<void>((resolve) => {
    const decoder = new FrameDecoder((_type, frame) => {
      const packet = decodeFrame(frame) as Packet;
      if (packet.type !== PacketType.Pong || packet.nonce !== expected) wrong++;
      expected++;
      if (expected === PINGS) resolve();
    });
    attacker.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  attacker.resume();
  await done;
  t.equal(expected, PINGS, 'a Pong for every Ping');
  t.equal(wrong, 0, 'all Pongs in order');
});

t.test('a WindowUpdate past the largest window closes the pair as a flow-control violation', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  const { client: b, virtualIp: bIp } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, aIp.ip, b, bIp.ip, 80);
  // B may grow A's credit up to MAX_WINDOW_BYTES (§7), not one byte beyond.
  b.send({ type: PacketType.WindowUpdate, connectionId, bytes: MAX_WINDOW_BYTES - INITIAL_WINDOW_BYTES + 1 });
  const toA = await a.next(PacketType.SocketClosed);
  const toB = await b.next(PacketType.SocketClosed);
  t.equal(toA.reason, CloseReason.FlowControlViolation);
  t.equal(toB.reason, CloseReason.FlowControlViolation);
  t.equal(toA.connectionId, connectionId);
});

t.test('a sender held back by a stalled receiver is kept; the stalled receiver is dropped as a slow consumer', async (t) => {
  const { relay, open } = await relayFixture(t, {
    highWaterMarkBytes: HIGH_WATER_MARK_BYTES,
    keepaliveIntervalMs: 100,
    keepaliveTimeoutMs: 800,
  });
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  const { client: b, virtualIp: bIp } = await open('127.0.0.3');
  const aId = relay.status().clients.find((c) => c.realIp === '127.0.0.2')!.id;
  // B stops reading but keeps talking, so it is never silent itself.
  const pinger = setInterval(() => b.send({ type: PacketType.Ping, nonce: 1 }), 100);
  t.teardown(() => clearInterval(pinger));
  const ids: number[] = [];
  for (let i = 0; i < 12; i++) ids.push((await pairUp(a, aIp.ip, b, bIp.ip, 1000 + i)).connectionId);
  b.pause();
  const aPaused = new Promise<void>((resolve) => {
    relay.bus.on('flow.paused', (e) => {
      if (e.sourceId === aId) resolve();
    });
  });
  const dropped = nextEvent(relay.bus, 'client.disconnected');
  // A full window on every pair: 12 MiB, more than the kernel buffers hold while B reads nothing.
  const chunk = new Uint8Array(64 * 1024 - 9);
  for (const id of ids) {
    for (let sent = 0; sent + chunk.length <= INITIAL_WINDOW_BYTES; sent += chunk.length) a.send(encodeArbitraryData(id, chunk));
  }
  await aPaused;
  const gone = await dropped;
  t.equal(gone.realIp, '127.0.0.3', 'the stalled receiver is the one dropped');
  t.equal(gone.reason, 'SlowConsumer');
  // A is still connected and told its pairs ended with their peer.
  const closed = await a.next(PacketType.SocketClosed);
  t.equal(closed.reason, CloseReason.PeerDisconnected);
  t.ok(relay.status().clients.some((c) => c.id === aId), 'the held-back sender stays connected');
  t.equal(relay.counters.keepaliveTimeouts, 0, 'nobody was dropped as silent');
});

t.test('before Hello a claimed large frame is refused at once', async (t) => {
  const { relay } = await relayFixture(t);
  const socket = net.connect({ host: '127.0.0.1', port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => socket.destroy());
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  // Claims 1000 bytes: fine after Hello, but nobody has said who they are yet.
  socket.write(new Uint8Array([0, 0, 0x03, 0xe8, PacketType.Hello]));
  await once(socket, 'close');
  const reply = decodeFrame(new Uint8Array(Buffer.concat(chunks))) as Packet;
  t.equal(reply.type, PacketType.Error);
  if (reply.type === PacketType.Error) {
    t.equal(reply.code, ErrorCode.FrameTooLarge);
    t.match(reply.message, /limit of 64 bytes/);
  }
});

t.test('one real IP cannot hold more than maxConnectionsPerIp connections', async (t) => {
  const { relay, open } = await relayFixture(t, { maxConnectionsPerIp: 2 });
  await open('127.0.0.9');
  const { client: second } = await open('127.0.0.9');
  const refused = net.connect({ host: '127.0.0.1', port: relay.port, localAddress: '127.0.0.9' });
  t.teardown(() => refused.destroy());
  const chunks: Buffer[] = [];
  refused.on('data', (c: Buffer) => chunks.push(c));
  await once(refused, 'close');
  const reply = decodeFrame(new Uint8Array(Buffer.concat(chunks))) as Packet;
  t.equal(reply.type, PacketType.Error);
  if (reply.type === PacketType.Error) {
    t.equal(reply.code, ErrorCode.TooManyClients);
    t.match(reply.message, /127\.0\.0\.9 already has 2 connections/);
  }
  // Another address is not affected, and a freed slot is usable again.
  const { virtualIp } = await open('127.0.0.10');
  t.ok(virtualIp.ip > 0);
  second.socket.destroy();
  await second.closed;
  await new Promise((resolve) => setImmediate(resolve));
  const { virtualIp: again } = await open('127.0.0.9');
  t.ok(again.ip > 0, 'a slot freed by a disconnect is given again');
});

t.test('a pair reports no state change after it is closed', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  const { client: b, virtualIp: bIp } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, aIp.ip, b, bIp.ip, 80);
  const events: string[] = [];
  relay.bus.on('pair.stateChanged', (e) => {
    if (e.id === connectionId) events.push(`state:${e.state}`);
  });
  relay.bus.on('pair.closed', (e) => {
    if (e.id === connectionId) events.push('closed');
  });
  a.send({ type: PacketType.SocketClosed, connectionId, reason: CloseReason.Normal });
  await b.next(PacketType.SocketClosed);
  // A round trip after the close, so anything the close set off has been delivered.
  a.send({ type: PacketType.Ping, nonce: 7 });
  await a.next(PacketType.Pong);
  t.equal(events.at(-1), 'closed', `events: ${events.join(', ')}`);
  t.equal(relay.status().pairs.length, 0);
});
