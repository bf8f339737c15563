/**
 * Issue 9, finding 3: nothing bounded the pairs one real IP could open (256 connections opened
 * 130,944 pairs, 1.12 GB). Now pairs per host, pairs relay-wide, pending requests relay-wide and
 * bound ports relay-wide are bounded, each refused on the wire (RequestFailed LimitReached,
 * BindResponse LimitReached), never silently. A bystander pair keeps working throughout.
 */
import t from 'tap';
import { BindStatus, ConnectionStatus, FailureReason, PacketType, type Packet } from '../../protocol/index.ts';
import { RawClient, nextId } from '../helpers/raw-client.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';
import { Bystander } from '../helpers/bystander.ts';
import { createRelayMetrics } from '../../observe/metrics.ts';

/** Accepts every connection request `client` gets until it closes. */
function autoAccept(client: RawClient): void {
  void (async () => {
    for (;;) {
      const request = await client.next(PacketType.SocketConnectionRequest, 60_000).catch(() => undefined);
      if (request === undefined) return;
      client.send({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted });
    }
  })();
}

/** Sends `n` connection requests from `client` to ip:port and returns how many were accepted and refused. */
async function requestPairs(client: RawClient, fromIp: number, toIp: number, port: number, n: number) {
  const { port: sourcePort } = await client.bind(0);
  const ids = new Set<number>();
  for (let i = 0; i < n; i++) {
    const requestId = nextId();
    ids.add(requestId);
    client.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: fromIp, port: sourcePort }, destination: { ip: toIp, port } });
  }
  let accepted = 0;
  const refused: number[] = [];
  while (accepted + refused.length < n) {
    const packet: Packet = await client.next(undefined, 10_000);
    if (packet.type === PacketType.SocketConnectionResponse && ids.has(packet.requestId) && packet.status === ConnectionStatus.Accepted) accepted++;
    else if (packet.type === PacketType.RequestFailed && ids.has(packet.requestId)) refused.push(packet.reason);
  }
  return { accepted, refused };
}

t.test('pairs are bounded per requesting host and relay-wide, refused with RequestFailed(LimitReached)', async (t) => {
  const { relay, open } = await relayFixture(t, { maxPairsPerHost: 40, maxPairs: 60 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const { client: target, virtualIp: targetIp } = await open('127.0.5.1');
  t.equal((await target.bind(80)).status, BindStatus.Ok);
  autoAccept(target);

  // One real IP, four connections, 60 requests: 40 get through.
  const attackers = await Promise.all([1, 2, 3, 4].map(() => open('127.0.5.2')));
  const results = await Promise.all(attackers.map(({ client, virtualIp }) => requestPairs(client, virtualIp.ip, targetIp.ip, 80, 15)));
  t.equal(results.reduce((sum, r) => sum + r.accepted, 0), 40, 'the host got its 40 pairs');
  const refused = results.flatMap((r) => r.refused);
  t.equal(refused.length, 20, 'and 20 refusals');
  t.ok(refused.every((r) => r === FailureReason.LimitReached), 'each one RequestFailed(LimitReached)');
  await bystander.advance(3);

  // Another host is not held to the first one's count, only to the relay-wide one (60, bystander included).
  const { client: other, virtualIp: otherIp } = await open('127.0.5.3');
  const second = await requestPairs(other, otherIp.ip, targetIp.ip, 80, 30);
  t.equal(second.accepted, 60 - 40 - 1, 'another host fills the relay-wide limit');
  t.equal(second.refused.length, 30 - second.accepted);
  t.equal(relay.counters.limitRefusals.maxPairsPerHost, 20);
  t.equal(relay.counters.limitRefusals.maxPairs, second.refused.length);
  t.equal(relay.counters.pairCount, 60);
  const metrics = createRelayMetrics({ bus: relay.bus, dataPath: () => relay.counters, defaultMetrics: false });
  const text = await metrics.metrics();
  metrics.close();
  t.match(text, /alphanet_limit_refusals_total\{limit="maxPairsPerHost"\} 20\n/, '/metrics counts the refusals by bound');
  t.match(text, /alphanet_pairs 60\n/, '/metrics shows the pairs held');

  // Closing frees the count.
  attackers[0].client.socket.destroy();
  await attackers[0].client.closed;
  const again = await requestPairs(other, otherIp.ip, targetIp.ip, 80, 1);
  t.equal(again.accepted, 1, 'a freed pair can be opened again');
  await bystander.advance(3);
  await bystander.stop();
});

t.test('pending requests are bounded relay-wide', async (t) => {
  const { relay, open } = await relayFixture(t, { maxPendingRequests: 25, requestTimeoutMs: 2_000 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  // A target that never answers.
  const { client: silent, virtualIp: silentIp } = await open('127.0.6.1');
  t.equal((await silent.bind(81)).status, BindStatus.Ok);
  const askers = await Promise.all([1, 2].map((i) => open(`127.0.6.${i + 1}`)));
  const answers = await Promise.all(
    askers.map(async ({ client, virtualIp }) => {
      const { port } = await client.bind(0);
      for (let i = 0; i < 15; i++) {
        client.send({ type: PacketType.SocketStatusRequest, requestId: nextId(), source: { ip: virtualIp.ip, port }, destination: { ip: silentIp.ip, port: 81 } });
      }
      const reasons: number[] = [];
      for (let i = 0; i < 15; i++) reasons.push((await client.next(PacketType.RequestFailed, 10_000)).reason);
      return reasons;
    }),
  );
  const all = answers.flat();
  t.equal(all.filter((r) => r === FailureReason.LimitReached).length, 5, '5 of 30 refused at once: 25 may wait relay-wide');
  t.equal(all.filter((r) => r === FailureReason.Timeout).length, 25, 'the 25 that waited timed out');
  t.equal(relay.counters.pendingCount, 0);
  await bystander.advance(3);
  await bystander.stop();
});

t.test('bound ports are bounded relay-wide, refused with BindResponse(LimitReached)', async (t) => {
  const { relay, open } = await relayFixture(t, { maxBoundPorts: 40 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const { client } = await open('127.0.7.1');
  const free = 40 - relay.counters.boundPortCount;
  for (let i = 0; i < free; i++) t.equal((await client.bind(0)).status, BindStatus.Ok);
  const refused = await client.bind(0);
  t.equal(refused.status, BindStatus.LimitReached);
  t.equal((await client.bind(5000)).status, BindStatus.LimitReached, 'an explicit port too');
  client.send({ type: PacketType.Unbind, port: 49152 });
  const after = await client.bind(0);
  t.equal(after.status, BindStatus.Ok, 'an unbound port frees a place');
  t.equal(relay.counters.limitRefusals.maxBoundPorts, 2);
  await bystander.advance(3);
  await bystander.stop();
});
