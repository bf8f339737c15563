import t, { type Test } from 'tap';
import { SimulatedClock } from 'xstate';
import { waitFor } from '../helpers/wait.ts';
import { ErrorCode, FailureReason, PacketType, encodeArbitraryData, encodePacket } from '../../protocol/index.ts';
import { helloBytes, type RawClient } from '../helpers/raw-client.ts';
import { nextEvent, pairUp, relayFixture } from '../helpers/relay-fixture.ts';

/** A bystander with an open pair keeps working after another client misbehaves. */
async function checkBystanders(t: Test, a: RawClient, b: RawClient, connectionId: number): Promise<void> {
  a.send(encodeArbitraryData(connectionId, new Uint8Array([42])));
  t.same([...(await b.next(PacketType.ArbitraryData)).data], [42], 'other clients unaffected');
}

const cases: Array<{ name: string; bytes: () => Uint8Array; hello: boolean; code: number }> = [
  { name: 'garbage (an HTTP request)', bytes: () => new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), hello: false, code: ErrorCode.FrameTooLarge },
  { name: 'oversize frame', bytes: () => new Uint8Array([0x00, 0x10, 0x00, 0x00, PacketType.ArbitraryData]), hello: true, code: ErrorCode.FrameTooLarge },
  { name: 'zero-length frame', bytes: () => new Uint8Array([0, 0, 0, 0]), hello: true, code: ErrorCode.MalformedFrame },
  { name: 'unknown packet type', bytes: () => new Uint8Array([0, 0, 0, 1, 0x7f]), hello: true, code: ErrorCode.UnknownPacketType },
  { name: 'fixed packet of the wrong size', bytes: () => new Uint8Array([0, 0, 0, 2, PacketType.Ping, 1]), hello: true, code: ErrorCode.MalformedFrame },
  { name: 'a packet before Hello', bytes: () => encodePacket({ type: PacketType.BindRequest, requestId: 1, port: 80 }), hello: false, code: ErrorCode.UnexpectedPacket },
  { name: 'data before Hello', bytes: () => encodeArbitraryData(1, new Uint8Array(3)), hello: false, code: ErrorCode.UnexpectedPacket },
  { name: 'a second Hello', bytes: () => helloBytes(), hello: true, code: ErrorCode.UnexpectedPacket },
  { name: 'a relay-only packet', bytes: () => encodePacket({ type: PacketType.RequestFailed, requestId: 1, reason: 1 }), hello: true, code: ErrorCode.UnexpectedPacket },
  { name: 'another protocol version', bytes: () => helloBytes(undefined, 99), hello: false, code: ErrorCode.UnsupportedVersion },
  { name: 'a Hello with the wrong magic', bytes: () => helloBytes(0x48545450), hello: false, code: ErrorCode.MalformedFrame },
];

t.test('bad input: Error with the right code, disconnect, others unaffected', async (t) => {
  const { relay, open, connect } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 8000);
  let n = 10;
  for (const c of cases) {
    const bad = c.hello ? (await open(`127.0.0.${n++}`)).client : await connect(`127.0.0.${n++}`);
    const logged = nextEvent(relay.bus, 'client.protocolError');
    bad.send(c.bytes());
    const error = await bad.next(PacketType.Error);
    t.equal(error.code, c.code, `${c.name}: code ${c.code}`);
    t.ok(error.message.length > 0, `${c.name}: a message (${error.message})`);
    t.equal((await logged).code, Object.entries(ErrorCode).find(([, v]) => v === c.code)![0]);
    await bad.closed;
    await checkBystanders(t, a, b, connectionId);
  }
  t.equal(relay.counters.protocolErrors, cases.length);
});

t.test('no Hello within the hello timeout: closed at the timeout, not before', async (t) => {
  const clock = new SimulatedClock();
  const { relay, connect } = await relayFixture(t, { clock, helloTimeoutMs: 10_000 });
  const quiet = await connect('127.0.0.2');
  // The relay's machine starts when it accepts the connection; only then does simulated time count.
  await waitFor(() => relay.counters.clientsTotal === 1, 'the relay to accept the connection');
  clock.increment(9_999);
  t.equal(relay.status().clients.length, 1, 'still connected 1 ms before the timeout');
  t.same(quiet.queue, [], 'nothing said yet');
  clock.increment(1);
  t.equal((await quiet.next(PacketType.Error)).code, ErrorCode.HelloTimeout);
  await quiet.closed;
});

t.test('spoofing: foreign connection ids, ports not held, forged source IPs', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { client: c, virtualIp: vc } = await open('127.0.0.4');
  const { connectionId, aPort } = await pairUp(a, va.ip, b, vb.ip, 8100);
  // C injects into A–B.
  c.send(encodeArbitraryData(connectionId, new Uint8Array([6, 6, 6])));
  t.same(await c.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: 4 });
  c.send({ type: PacketType.WindowUpdate, connectionId, bytes: 1 << 30 });
  t.same(await c.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: 4 });
  c.send({ type: PacketType.SocketClosed, connectionId, reason: 0 });
  c.send({ type: PacketType.SocketEnd, connectionId });
  t.equal((await c.next(PacketType.SocketClosed)).reason, 4);
  await checkBystanders(t, a, b, connectionId);
  t.equal(relay.status().pairs.length, 1, 'the pair survived');
  // C uses A's port (not held by C) as its source.
  c.send({ type: PacketType.SocketConnectionRequest, requestId: 5, connectionId: 0, source: { ip: va.ip, port: aPort }, destination: { ip: vb.ip, port: 8100 } });
  t.same(await c.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 5, reason: FailureReason.InvalidRequest });
  // C binds the same port number on its own host and claims A's IP: stamped to C's IP.
  await c.bind(aPort);
  c.send({ type: PacketType.SocketStatusRequest, requestId: 6, source: { ip: va.ip, port: aPort }, destination: { ip: vb.ip, port: 8100 } });
  const forwarded = await b.next(PacketType.SocketStatusRequest);
  t.same(forwarded.source, { ip: vc.ip, port: aPort }, 'target sees the real sender');
  // B answers a request id that was not sent to it: dropped.
  b.send({ type: PacketType.SocketStatusResponse, requestId: forwarded.requestId + 1, status: 0 });
  b.send({ type: PacketType.SocketStatusResponse, requestId: forwarded.requestId, status: 2 });
  t.same(await c.next(PacketType.SocketStatusResponse), { type: PacketType.SocketStatusResponse, requestId: 6, status: 2 });
});

t.test('a request flood past the pending limit is answered LimitReached, not a disconnect', async (t) => {
  const { open } = await relayFixture(t, { maxPendingRequestsPerClient: 3 });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await b.bind(8200);
  const { port } = await a.bind(0);
  for (let id = 1; id <= 5; id++) a.send({ type: PacketType.SocketStatusRequest, requestId: id, source: { ip: va.ip, port }, destination: { ip: vb.ip, port: 8200 } });
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 4, reason: FailureReason.LimitReached });
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 5, reason: FailureReason.LimitReached });
  const first = await b.next(PacketType.SocketStatusRequest);
  b.send({ type: PacketType.SocketStatusResponse, requestId: first.requestId, status: 0 });
  t.equal((await a.next(PacketType.SocketStatusResponse)).requestId, 1);
  a.send({ type: PacketType.SocketStatusRequest, requestId: 6, source: { ip: va.ip, port }, destination: { ip: vb.ip, port: 8200 } });
  t.equal((await b.next(PacketType.SocketStatusRequest)).source.port, port, 'a slot freed up');
});

t.test('maxClients: the next client is refused with TooManyClients', async (t) => {
  const { open, connect } = await relayFixture(t, { maxClients: 1 });
  await open('127.0.0.2');
  const extra = await connect('127.0.0.3');
  t.equal((await extra.next(PacketType.Error)).code, ErrorCode.TooManyClients);
});
