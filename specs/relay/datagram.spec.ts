/**
 * Datagrams through the relay (docs/PROTOCOL.md §10), with raw clients on loopback: a port space
 * apart from stream ports, boundaries kept, the relay's source stamp, no delivery to a host that
 * did not bind and no answer for it, drops counted when a receiver is congested (its queue stays
 * bounded), the per-host rate limit, and a data path that runs no machine per datagram.
 */
import t from 'tap';
import { SimulatedClock } from 'xstate';
import { BindStatus, ErrorCode, MAX_DATAGRAM_PAYLOAD_BYTES, PacketType, encodePacket, type PacketOf } from '../../protocol/index.ts';
import { DEFAULT_DATAGRAM_QUEUE_BYTES } from '../../actors/relay/index.ts';
import { nextEvent, relayFixture } from '../helpers/relay-fixture.ts';
import { createRelayMetrics } from '../../observe/metrics.ts';
import { RawClient, nextError, nextId, frameHeader } from '../helpers/raw-client.ts';

type Datagram = PacketOf<typeof PacketType.Datagram>;

async function datagramBind(client: RawClient, port: number): Promise<PacketOf<typeof PacketType.BindResponse>> {
  const requestId = nextId();
  client.send({ type: PacketType.DatagramBind, requestId, port });
  const answer = await client.next(PacketType.BindResponse);
  if (answer.requestId !== requestId) throw new Error(`BindResponse for ${answer.requestId}, asked ${requestId}`);
  return answer;
}

function datagram(sourceIp: number, sourcePort: number, destIp: number, destPort: number, payload: Uint8Array): Uint8Array {
  return encodePacket({ type: PacketType.Datagram, source: { ip: sourceIp, port: sourcePort }, destination: { ip: destIp, port: destPort }, payload });
}

/** Waits until the relay has handled everything `client` sent before: its Pong comes after. */
async function flush(client: RawClient): Promise<void> {
  const nonce = nextId();
  client.send({ type: PacketType.Ping, nonce });
  const pong = await client.next(PacketType.Pong, 20_000);
  if (pong.nonce !== nonce) throw new Error(`Pong ${pong.nonce}, expected ${nonce}`);
}

t.test('datagram ports are a space of their own: bound apart from stream ports, in use per host', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a } = await open('127.0.0.2');
  const { client: a2 } = await open('127.0.0.2');
  const { client: b } = await open('127.0.0.3');
  t.match(await datagramBind(a, 7777), { status: BindStatus.Ok, port: 7777 });
  t.match(await a.bind(7777), { status: BindStatus.Ok, port: 7777 }, 'the stream port 7777 is another port');
  t.match(await datagramBind(a2, 7777), { status: BindStatus.AddressInUse }, 'another connection of the same host');
  t.match(await datagramBind(b, 7777), { status: BindStatus.Ok }, 'another host has its own 7777');
  const ephemeral = await datagramBind(a, 0);
  t.equal(ephemeral.status, BindStatus.Ok);
  t.ok(ephemeral.port >= 49152, `port 0 picks an ephemeral port (${ephemeral.port})`);
  t.equal(relay.counters.datagramPortCount, 3);
  a.send({ type: PacketType.DatagramUnbind, port: 7777 });
  t.match(await datagramBind(a2, 7777), { status: BindStatus.Ok }, 'free again after DatagramUnbind');
  const left = nextEvent(relay.bus, 'client.disconnected');
  await a2.close();
  await left;
  t.match(await datagramBind(a, 7777), { status: BindStatus.Ok }, "free again when its holder's connection ends");
});

t.test('boundaries kept (0, 1, max bytes), the relay stamps the sender, nothing answers', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await datagramBind(a, 5000);
  await datagramBind(b, 6000);
  const sizes = [0, 1, MAX_DATAGRAM_PAYLOAD_BYTES, 513];
  const payloads = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff));
  // A lies about its IP in the second one: the relay overwrites it.
  payloads.forEach((p, i) => a.send(datagram(i === 1 ? 0x01020304 : va.ip, 5000, vb.ip, 6000, p)));
  for (const [i, payload] of payloads.entries()) {
    const got = (await b.next(PacketType.Datagram)) as Datagram;
    t.same([...got.payload], [...payload], `datagram ${i} (${sizes[i]} bytes) arrives whole and alone`);
    t.same(got.source, { ip: va.ip, port: 5000 }, `datagram ${i}: the sender as the relay stamped it`);
    t.same(got.destination, { ip: vb.ip, port: 6000 });
  }
  await flush(a);
  t.same(a.queue, [], 'the sender hears nothing back');
  t.equal(relay.counters.datagramsRelayed, 4);
});

t.test('a source port the sender does not hold, and a host or port not bound, drop the datagram silently', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { client: c, virtualIp: vc } = await open('127.0.0.4');
  await datagramBind(a, 5000);
  await datagramBind(b, 6000);
  // B holds datagram 6000 of another connection of its host? No: C holds the *stream* port 6000 only.
  t.equal((await c.bind(6000)).status, BindStatus.Ok);
  const one = new Uint8Array([1]);
  a.send(datagram(va.ip, 5001, vb.ip, 6000, one)); // not A's port
  await datagramBind(b, 6001);
  a.send(datagram(va.ip, 6001, vb.ip, 6000, one)); // B's port, not A's
  a.send(datagram(va.ip, 5000, vc.ip, 6000, one)); // C bound only the stream port
  a.send(datagram(va.ip, 5000, 0x0a0a0a0a, 6000, one)); // no such host
  a.send(datagram(va.ip, 5000, vb.ip, 6002, one)); // B's host, unbound port
  a.send(datagram(va.ip, 5000, vb.ip, 6000, new Uint8Array([9]))); // the marker
  const got = (await b.next(PacketType.Datagram)) as Datagram;
  t.same([...got.payload], [9], 'only the valid datagram arrives');
  await flush(a);
  await flush(c);
  t.same(relay.counters.datagramsDropped, { congested: 0, notBound: 3, rateLimited: 0, unboundSource: 2 });
  t.same(b.queue.filter((p) => p.type === PacketType.Datagram), [], 'nothing else for B');
  t.same(c.queue.filter((p) => p.type === PacketType.Datagram), [], 'nothing for C');
  t.same(a.queue, [], 'no answer to the sender (no amplification)');
  const metrics = createRelayMetrics({ bus: relay.bus, dataPath: () => relay.counters, defaultMetrics: false });
  const text = await metrics.registry.metrics();
  t.match(text, /alphanet_datagrams_dropped_total\{reason="notBound"\} 3/, '/metrics counts the drops by reason');
  t.match(text, /alphanet_datagrams_dropped_total\{reason="unboundSource"\} 2/);
  t.match(text, /alphanet_datagrams_relayed_total 1/);
  t.match(text, /alphanet_datagram_ports 3/);
});

t.test('a datagram above the maximum payload is a protocol error', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a } = await open('127.0.0.2');
  a.send(frameHeader(PacketType.Datagram, 1 + 12 + MAX_DATAGRAM_PAYLOAD_BYTES + 1));
  const error = await nextError(a.socket);
  t.equal(error.code, ErrorCode.MalformedFrame, `refused by its header: ${error.message}`);
});

t.test('a receiver that never reads: datagrams beyond its threshold are dropped and counted, its queue stays bounded', async (t) => {
  const { relay, open } = await relayFixture(t, { datagramRate: 1e9, datagramBurst: 1e9, datagramByteRate: 1e12 });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await datagramBind(a, 5000);
  await datagramBind(b, 6000);
  b.pause();
  const payload = new Uint8Array(1024);
  const COUNT = 10_000;
  let maxQueued = 0;
  let maxRelayQueued = 0;
  const sample = setInterval(() => {
    const queued = relay.status({ limit: 10 }).clients.find((c) => c.id !== undefined && c.realIp === '127.0.0.3')?.queuedBytes ?? 0;
    maxQueued = Math.max(maxQueued, queued);
    maxRelayQueued = Math.max(maxRelayQueued, relay.counters.queuedBytes);
  }, 5);
  t.teardown(() => clearInterval(sample));
  for (let i = 0; i < COUNT; i++) {
    if (!a.send(datagram(va.ip, 5000, vb.ip, 6000, payload))) await new Promise((resolve) => a.socket.once('drain', resolve));
  }
  await flush(a);
  clearInterval(sample);
  const frameBytes = 17 + payload.length;
  const counters = relay.counters;
  t.ok(counters.datagramsDropped.congested > 0, `${counters.datagramsDropped.congested} dropped as congested`);
  t.equal(counters.datagramsRelayed + counters.datagramsDropped.congested, COUNT, 'each datagram relayed or counted as dropped');
  const finalQueued = relay.status().clients.find((c) => c.realIp === '127.0.0.3')!.queuedBytes;
  t.ok(finalQueued < DEFAULT_DATAGRAM_QUEUE_BYTES + frameBytes, `the receiver's queue ${finalQueued} stays below the threshold plus one datagram`);
  t.ok(maxQueued < DEFAULT_DATAGRAM_QUEUE_BYTES + frameBytes, `and never passed it (max seen ${maxQueued})`);
  t.ok(maxRelayQueued < DEFAULT_DATAGRAM_QUEUE_BYTES + 2 * frameBytes + 4096, `relay-wide queued bytes stayed bounded (max seen ${maxRelayQueued})`);
  t.equal(counters.backpressurePauses, 0, 'the sender was never paused');
});

t.test('the per-host rate limit drops datagrams beyond the burst, and refills with time', async (t) => {
  const clock = new SimulatedClock();
  const { relay, open } = await relayFixture(t, { clock, datagramRate: 100, datagramBurst: 10 });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: a2, virtualIp: va2 } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await datagramBind(a, 5000);
  await datagramBind(a2, 5001);
  await datagramBind(b, 6000);
  const send = (client: RawClient, ip: number, port: number, n: number) => {
    for (let i = 0; i < n; i++) client.send(datagram(ip, port, vb.ip, 6000, new Uint8Array([i])));
  };
  send(a, va.ip, 5000, 8);
  send(a2, va2.ip, 5001, 8);
  await flush(a);
  await flush(a2);
  t.equal(relay.counters.datagramsRelayed, 10, 'the burst of 10 is shared by the connections of one host');
  t.equal(relay.counters.datagramsDropped.rateLimited, 6);
  clock.increment(50); // 100/s × 50 ms = 5 more
  send(a, va.ip, 5000, 8);
  await flush(a);
  t.equal(relay.counters.datagramsRelayed, 15, '5 more after 50 ms at 100 per second');
  t.equal(relay.counters.datagramsDropped.rateLimited, 9);
});

t.test('the datagram path runs no machine and emits nothing per datagram', async (t) => {
  let inspected = 0;
  const { relay, open } = await relayFixture(t, { inspect: () => void inspected++ });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await datagramBind(a, 5000);
  await datagramBind(b, 6000);
  let busEvents = 0;
  const count = () => void busEvents++;
  for (const name of ['flow.paused', 'pair.opened', 'port.bound', 'client.connected'] as const) relay.bus.on(name, count);
  await flush(a);
  const before = inspected;
  t.ok(before > 0, 'the inspector hears the relay\'s machines');
  for (let i = 0; i < 1000; i++) a.send(datagram(va.ip, 5000, vb.ip, 6000, new Uint8Array(64)));
  await flush(a);
  const after = inspected;
  let received = 0;
  while (received < 1000) {
    await b.next(PacketType.Datagram);
    received++;
  }
  // The flush's Ping/Pong may show in the inspector; a machine step per datagram would be ≥ 1000.
  t.ok(after - before < 20, `${after - before} inspection events for 1000 datagrams`);
  t.equal(busEvents, 0, 'no bus event');
});
