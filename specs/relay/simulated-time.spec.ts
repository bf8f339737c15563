/**
 * The relay's timeouts on simulated time (the `clock` option): xstate's SimulatedClock drives the
 * machines' named delays and the sweep, while the bytes cross real loopback TCP. Each timeout is
 * checked on both sides of its boundary without waiting for it in real time.
 */
import t from 'tap';
import { SimulatedClock } from 'xstate';
import { CloseReason, ErrorCode, FailureReason, PacketType, SocketStatus } from '../../protocol/index.ts';
import { nextEvent, relayFixture } from '../helpers/relay-fixture.ts';
import { nextId } from '../helpers/raw-client.ts';

const REQUEST_TIMEOUT_MS = 10_000;

t.test('a status request the target never answers fails at the request timeout, not before', async (t) => {
  const clock = new SimulatedClock();
  const { relay, open } = await relayFixture(t, { clock, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  const { client: a } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  t.equal((await b.bind(7777)).status, 0);
  const { port: aPort } = await a.bind(0);
  const requestId = nextId();
  a.send({ type: PacketType.SocketStatusRequest, requestId, source: { ip: 0, port: aPort }, destination: { ip: vb.ip, port: 7777 } });
  await b.next(PacketType.SocketStatusRequest);
  const handshake = nextEvent(relay.bus, 'handshake.completed');

  // Timers fire inside increment(), so the relay's state can be read right after it.
  clock.increment(REQUEST_TIMEOUT_MS - 1);
  t.equal(relay.status().totals.pendingRequests, 1, 'still waiting 1 ms before the timeout');
  t.equal(relay.counters.requestsFailed, 0);
  clock.increment(1);
  t.equal(relay.status().totals.pendingRequests, 0, 'settled at the timeout');
  t.equal(relay.counters.requestsFailed, 1);

  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId, reason: FailureReason.Timeout });
  t.match(await handshake, { kind: 'status', outcome: 'timeout', durationMs: REQUEST_TIMEOUT_MS }, 'the duration is simulated time');

  // A late answer is dropped: the origin hears nothing more, and the relay stays healthy.
  b.send({ type: PacketType.SocketStatusResponse, requestId: 1, status: SocketStatus.Listening });
  a.send({ type: PacketType.Ping, nonce: 5 });
  t.same(await a.next(PacketType.Pong), { type: PacketType.Pong, nonce: 5 });
  t.same(a.queue, [], 'no answer after the timeout');
});

t.test('a connection request the target never answers fails at the request timeout; the target is told to forget it', async (t) => {
  const clock = new SimulatedClock();
  const { relay, open } = await relayFixture(t, { clock, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  const { client: a } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  t.equal((await b.bind(7777)).status, 0);
  const { port: aPort } = await a.bind(0);
  const requestId = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: 0, port: aPort }, destination: { ip: vb.ip, port: 7777 } });
  const forwarded = await b.next(PacketType.SocketConnectionRequest);

  clock.increment(REQUEST_TIMEOUT_MS - 1);
  t.equal(relay.status().totals.pairsLive, 1, 'the pair is still requested 1 ms before the timeout');
  clock.increment(1);
  t.equal(relay.status().totals.pairsLive, 0, 'released at the timeout');
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId, reason: FailureReason.Timeout });
  t.same(await b.next(PacketType.SocketClosed), {
    type: PacketType.SocketClosed,
    connectionId: forwarded.connectionId,
    reason: CloseReason.Error,
  });
});

t.test('a silent client is pinged, then dropped at the keepalive timeout, by the sweep on simulated time', async (t) => {
  const clock = new SimulatedClock();
  const keepaliveIntervalMs = 15_000;
  const keepaliveTimeoutMs = 45_000;
  const { relay, open } = await relayFixture(t, { clock, keepaliveIntervalMs, keepaliveTimeoutMs });
  const { client: a } = await open('127.0.0.2', { autoPong: false });

  clock.increment(keepaliveIntervalMs);
  t.equal((await a.next(PacketType.Ping)).type, PacketType.Ping, 'pinged after the keepalive interval');
  // The sweep runs once a second of simulated time: the last sweep before the timeout is at 44 s.
  clock.increment(keepaliveTimeoutMs - keepaliveIntervalMs - 1_000);
  t.equal(relay.counters.keepaliveTimeouts, 0, 'not dropped before the timeout');
  t.equal(relay.status().clients.length, 1);
  clock.increment(1_000);
  t.equal(relay.counters.keepaliveTimeouts, 1, 'dropped at the timeout');
  t.equal(relay.status().clients.length, 0);
  t.match(await a.next(PacketType.Error), { type: PacketType.Error, code: ErrorCode.KeepaliveTimeout });
  await a.closed;
});
