import t from 'tap';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { INITIAL_WINDOW_BYTES, PacketType, CloseReason, encodeArbitraryData } from '../../protocol/index.ts';
import { relayFixture, pairUp, nextEvent } from '../helpers/relay-fixture.ts';
import type { RawClient } from '../helpers/raw-client.ts';

const FRAME_PAYLOAD = 16 * 1024;

/** Sends `data` on `connectionId`, never past the window the peer has granted (§7). */
async function sendWindowed(client: RawClient, connectionId: number, data: Uint8Array): Promise<void> {
  let credit = INITIAL_WINDOW_BYTES;
  for (let offset = 0; offset < data.length; offset += FRAME_PAYLOAD) {
    const chunk = data.subarray(offset, offset + FRAME_PAYLOAD);
    while (credit < chunk.length) credit += (await client.next(PacketType.WindowUpdate, 20_000)).bytes;
    credit -= chunk.length;
    if (!client.send(encodeArbitraryData(connectionId, chunk))) await once(client.socket, 'drain');
  }
}

/** Receives `total` bytes, granting each back at once; resolves with them concatenated. */
function receiveAll(client: RawClient, connectionId: number, total: number, grant = true): { done: Promise<Buffer>; grantAll: () => void } {
  const parts: Uint8Array[] = [];
  let received = 0;
  let owed = 0;
  let resolve!: (b: Buffer) => void;
  const done = new Promise<Buffer>((r) => (resolve = r));
  client.onData = (id, data) => {
    if (id !== connectionId) throw new Error(`data on unexpected connection ${id}`);
    parts.push(Buffer.from(data));
    received += data.length;
    if (grant) client.send({ type: PacketType.WindowUpdate, connectionId, bytes: data.length });
    else owed += data.length;
    if (received >= total) resolve(Buffer.concat(parts));
  };
  return {
    done,
    grantAll: () => {
      grant = true;
      if (owed > 0) client.send({ type: PacketType.WindowUpdate, connectionId, bytes: owed });
      owed = 0;
    },
  };
}

t.test('several MiB both ways arrive intact, byte for byte', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 9000);
  const aToB = randomBytes(4 * 1024 * 1024);
  const bToA = randomBytes(3 * 1024 * 1024 + 123);
  const atB = receiveAll(b, connectionId, aToB.length);
  const atA = receiveAll(a, connectionId, bToA.length);
  await Promise.all([sendWindowed(a, connectionId, aToB), sendWindowed(b, connectionId, bToA)]);
  const [gotB, gotA] = await Promise.all([atB.done, atA.done]);
  t.ok(gotB.equals(aToB), 'A → B intact');
  t.ok(gotA.equals(bToA), 'B → A intact');
  const pair = relay.status().pairs[0];
  t.equal(pair.bytesAToB, aToB.length);
  t.equal(pair.bytesBToA, bToA.length);
  t.ok(relay.counters.framesRelayed > 400);
});

t.test('a stalled receiver pauses the sender; memory stays bounded; nothing lost on resume', async (t) => {
  const highWaterMarkBytes = 64 * 1024;
  const { relay, open } = await relayFixture(t, { highWaterMarkBytes });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  // Several pairs so the window (1 MiB each) outgrows the loopback buffers.
  const pairs = 6;
  const ids: number[] = [];
  for (let i = 0; i < pairs; i++) ids.push((await pairUp(a, va.ip, b, vb.ip, 9100 + i)).connectionId);
  const payloads = ids.map(() => randomBytes(INITIAL_WINDOW_BYTES));
  b.pause();
  let maxQueued = 0;
  let aPausedSeen = false;
  relay.bus.on('flow.paused', (e) => {
    maxQueued = Math.max(maxQueued, e.queuedBytes);
    aPausedSeen ||= relay.status().clients.find((c) => c.realIp === '127.0.0.2')!.paused;
  });
  const paused = nextEvent(relay.bus, 'flow.paused');
  for (let i = 0; i < pairs; i++) {
    for (let o = 0; o < payloads[i].length; o += FRAME_PAYLOAD) a.send(encodeArbitraryData(ids[i], payloads[i].subarray(o, o + FRAME_PAYLOAD)));
  }
  const event = await paused;
  t.equal(event.sourceId, relay.status().clients.find((c) => c.realIp === '127.0.0.2')!.id);
  t.ok(event.queuedBytes > highWaterMarkBytes, 'paused because B\'s queue passed the mark');
  t.ok(aPausedSeen, 'A is not being read while B is full');

  const got = new Map<number, Uint8Array[]>(ids.map((id) => [id, []]));
  let total = 0;
  const all = new Promise<void>((resolve) => {
    b.onData = (id, data) => {
      got.get(id)!.push(Buffer.from(data));
      total += data.length;
      if (total === pairs * INITIAL_WINDOW_BYTES) resolve();
    };
  });
  const resumed = nextEvent(relay.bus, 'flow.resumed');
  b.resume();
  await all;
  await resumed;
  for (let i = 0; i < pairs; i++) t.ok(Buffer.concat(got.get(ids[i])!).equals(payloads[i]), `pair ${i} intact and in order`);
  t.ok(maxQueued <= highWaterMarkBytes + 64 * 1024 + FRAME_PAYLOAD, `max queued at pause ${maxQueued}`);
});

t.test('exceeding the window closes the pair with FlowControlViolation', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 9200);
  b.collect = true;
  const big = new Uint8Array(200 * 1024);
  for (let sent = 0; sent <= INITIAL_WINDOW_BYTES; sent += big.length) a.send(encodeArbitraryData(connectionId, big));
  t.same(await a.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: CloseReason.FlowControlViolation });
  t.same(await b.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: CloseReason.FlowControlViolation });
  const delivered = (b.received.get(connectionId) ?? []).reduce((n, d) => n + d.length, 0);
  t.ok(delivered <= INITIAL_WINDOW_BYTES, 'nothing past the window was forwarded');
});

t.test('half-close: SocketEnd each way finishes the pair with no further packet', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 9300);
  a.send({ type: PacketType.SocketEnd, connectionId });
  t.same(await b.next(PacketType.SocketEnd), { type: PacketType.SocketEnd, connectionId });
  // B may still send after A's end.
  b.send(encodeArbitraryData(connectionId, new Uint8Array([1, 2, 3])));
  t.same([...(await a.next(PacketType.ArbitraryData)).data], [1, 2, 3]);
  t.equal(relay.status().pairs[0].state, 'active.endedByA');
  // Data from A after its end is a violation.
  const closed = nextEvent(relay.bus, 'pair.closed');
  b.send({ type: PacketType.SocketEnd, connectionId });
  t.same(await a.next(PacketType.SocketEnd), { type: PacketType.SocketEnd, connectionId });
  const event = await closed;
  t.equal(event.reason, 'Finished');
  t.equal(relay.status().pairs.length, 0);
});

t.test('data after own SocketEnd is a ProtocolViolation for both ends', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 9400);
  a.send({ type: PacketType.SocketEnd, connectionId });
  a.send(encodeArbitraryData(connectionId, new Uint8Array([9])));
  t.same(await a.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: CloseReason.ProtocolViolation });
  await b.next(PacketType.SocketEnd);
  t.same(await b.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: CloseReason.ProtocolViolation });
});
