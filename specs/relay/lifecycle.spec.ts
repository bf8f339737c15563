import t from 'tap';
import { SimulatedClock } from 'xstate';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BindStatus, CloseReason, ErrorCode, FailureReason, PacketType } from '../../protocol/index.ts';
import { startRelay } from '../../actors/relay/index.ts';
import { openAddressStore } from '../../storage/index.ts';
import { RawClient, nextId } from '../helpers/raw-client.ts';
import { nextEvent, pairUp, relayFixture } from '../helpers/relay-fixture.ts';

t.test('same real IP keeps its virtual IP across a relay restart (file store)', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'db.json');
  const first: number[] = [];
  for (let round = 0; round < 2; round++) {
    const store = await openAddressStore({ path: db });
    const relay = await startRelay({ port: 0, store });
    for (const ip of ['127.0.0.2', '127.0.0.3']) {
      const { client, virtualIp } = await RawClient.open({ port: relay.port, localAddress: ip });
      if (round === 0) first.push(virtualIp.ip);
      else t.equal(virtualIp.ip, first.shift(), `${ip} keeps its address`);
      await client.close();
    }
    await relay.close();
    await store.close();
  }
});

t.test('address in use across two connections of one host; freed when the holder leaves', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: c1 } = await open('127.0.0.2');
  const { client: c2 } = await open('127.0.0.2');
  t.equal((await c1.bind(5000)).status, BindStatus.Ok);
  t.equal((await c2.bind(5000)).status, BindStatus.AddressInUse);
  t.equal((await c1.bind(5000)).status, BindStatus.AddressInUse, 'twice on one connection too');
  const gone = nextEvent(relay.bus, 'client.disconnected');
  await c1.close();
  await gone;
  t.equal((await c2.bind(5000)).status, BindStatus.Ok);
});

t.test('disconnect closes every pair; the peer hears PeerDisconnected', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 6000);
  const gone = nextEvent(relay.bus, 'client.disconnected');
  await b.close();
  t.same(await a.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason: CloseReason.PeerDisconnected });
  t.equal((await gone).reason, 'TransportClosed');
  t.equal(relay.status().pairs.length, 0);
  // B's host is gone: requests to it are Offline.
  a.send({ type: PacketType.SocketStatusRequest, requestId: 1, source: { ip: va.ip, port: relay.status().clients[0].ports[0] }, destination: { ip: vb.ip, port: 6000 } });
  t.equal((await a.next(PacketType.RequestFailed)).reason, FailureReason.Offline);
});

t.test('pending requests: timeout and target disconnect', async (t) => {
  // Simulated time: the 10 s request timeout passes in increment(), not in a real sleep that a
  // loaded machine could stretch past the next step.
  const clock = new SimulatedClock();
  const { open } = await relayFixture(t, { clock, requestTimeoutMs: 10_000 });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await b.bind(7000);
  const { port } = await a.bind(0);
  a.send({ type: PacketType.SocketStatusRequest, requestId: 11, source: { ip: va.ip, port }, destination: { ip: vb.ip, port: 7000 } });
  await b.next(PacketType.SocketStatusRequest);
  clock.increment(10_000);
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 11, reason: FailureReason.Timeout });
  a.send({ type: PacketType.SocketConnectionRequest, requestId: 12, connectionId: 0, source: { ip: va.ip, port }, destination: { ip: vb.ip, port: 7000 } });
  const req = await b.next(PacketType.SocketConnectionRequest);
  clock.increment(10_000);
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 12, reason: FailureReason.Timeout });
  t.same(await b.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId: req.connectionId, reason: CloseReason.Error });
  a.send({ type: PacketType.SocketConnectionRequest, requestId: 13, connectionId: 0, source: { ip: va.ip, port }, destination: { ip: vb.ip, port: 7000 } });
  await b.next(PacketType.SocketConnectionRequest);
  await b.close();
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 13, reason: FailureReason.TargetDisconnected });
});

t.test('keepalive: pings, and a silent client is dropped with KeepaliveTimeout', async (t) => {
  // Simulated time (15 s / 45 s, the defaults' shape): an answering client is never at the mercy
  // of a loaded machine delaying its Pong past a 150 ms timeout.
  const clock = new SimulatedClock();
  const { relay, open } = await relayFixture(t, { clock, keepaliveIntervalMs: 15_000, keepaliveTimeoutMs: 45_000 });
  const { client: alive } = await open('127.0.0.2', { autoPong: false });
  const { client: silent, virtualIp } = await open('127.0.0.3', { autoPong: false });
  t.equal(virtualIp.keepaliveIntervalMs, 15_000);
  t.equal(virtualIp.keepaliveTimeoutMs, 45_000);
  const answer = async (): Promise<void> => {
    const ping = await alive.next(PacketType.Ping);
    alive.send({ type: PacketType.Pong, nonce: (ping as { nonce: number }).nonce });
    // The relay reads in order: its answer to this Ping means it has read the Pong before it.
    alive.send({ type: PacketType.Ping, nonce: 1 });
    t.same(await alive.next(PacketType.Pong), { type: PacketType.Pong, nonce: 1 });
  };
  clock.increment(15_000);
  t.equal((await silent.next(PacketType.Ping)).type, PacketType.Ping, 'pinged after the interval');
  await answer();
  clock.increment(15_000);
  await answer();
  const timeout = nextEvent(relay.bus, 'client.keepaliveTimeout');
  clock.increment(15_000);
  const error = await silent.next(PacketType.Error);
  t.equal(error.code, ErrorCode.KeepaliveTimeout);
  t.equal((await timeout).realIp, '127.0.0.3');
  await silent.closed;
  t.same(relay.status().clients.map((c) => c.realIp), ['127.0.0.2'], 'the answering client stays');
  alive.send({ type: PacketType.Ping, nonce: 77 });
  t.same(await alive.next(PacketType.Pong), { type: PacketType.Pong, nonce: 77 });
});

t.test('idle socket connections are closed with IdleTimeout to both ends, not before', async (t) => {
  const clock = new SimulatedClock();
  const idleTimeoutMs = 10 * 60_000;
  // Keepalive far off, so the only timer that matters here is the pair's idle one.
  const { relay, open } = await relayFixture(t, { clock, idleTimeoutMs, keepaliveIntervalMs: 3_600_000, keepaliveTimeoutMs: 7_200_000 });
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 6100);
  clock.increment(idleTimeoutMs - 1_000);
  t.equal(relay.status().totals.pairsLive, 1, 'open a second before the idle timeout');
  clock.increment(1_000);
  const expected = { type: PacketType.SocketClosed, connectionId, reason: CloseReason.IdleTimeout };
  t.same(await a.next(PacketType.SocketClosed), expected);
  t.same(await b.next(PacketType.SocketClosed), expected);
});

t.test('close(): SocketClosed(RelayShutdown), then Error(RelayShuttingDown), then the connection ends', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 6200);
  const closing = relay.close();
  t.same(await a.next(), { type: PacketType.SocketClosed, connectionId, reason: CloseReason.RelayShutdown });
  t.equal((await a.next()).type, PacketType.Error);
  t.equal((await b.next(PacketType.Error)).code, ErrorCode.RelayShuttingDown);
  await Promise.all([a.closed, b.closed]);
  await closing;
  t.equal(relay.status().clients.length, 0);
});

t.test('request ids: many in flight at once, each answered with its own id', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  await b.bind(6300);
  const { port } = await a.bind(0);
  const ids = [nextId(), nextId(), nextId()];
  for (const requestId of ids) a.send({ type: PacketType.SocketStatusRequest, requestId, source: { ip: va.ip, port }, destination: { ip: vb.ip, port: 6300 } });
  const forwarded = [await b.next(PacketType.SocketStatusRequest), await b.next(PacketType.SocketStatusRequest), await b.next(PacketType.SocketStatusRequest)];
  // Answer in reverse order with distinct statuses.
  forwarded.reverse().forEach((f, i) => b.send({ type: PacketType.SocketStatusResponse, requestId: f.requestId, status: i }));
  const answers = [await a.next(PacketType.SocketStatusResponse), await a.next(PacketType.SocketStatusResponse), await a.next(PacketType.SocketStatusResponse)];
  t.same(answers.map((x) => [x.requestId, x.status]), [[ids[2], 0], [ids[1], 1], [ids[0], 2]]);
});
