/**
 * Idle stand-ins are closed (actors/relay/cluster/stand-in-use.ts, routing.ts): two relays in
 * this process on one nats-server, a client of each. A stand-in with no pair and no request
 * under way for the idle time is closed and its client slot released on its relay; the next
 * request for its host makes a new one; a stand-in carrying a pair is kept however long it has
 * been since anything else used it. Idleness runs on a clock the spec moves.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { joinCluster, type Cluster } from '../../../actors/relay/cluster/index.ts';
import { startRelay, type Relay } from '../../../actors/relay/index.ts';
import { createLogger } from '../../../actors/logger.ts';
import { CloseReason, ConnectionStatus, PacketType, SocketStatus, type Packet, type PacketOf } from '../../../protocol/index.ts';
import { DEFAULT_SUBNET } from '../../../storage/index.ts';
import { RawClient, nextId } from '../../helpers/raw-client.ts';
import { startNatsServer } from '../../helpers/nats-server.ts';
import { nextEvent } from '../../helpers/relay-fixture.ts';
import { waitFor, within } from '../../helpers/wait.ts';

const IDLE_MS = 1_000;
const nats = await startNatsServer(t);
const logger = createLogger({ level: 'silent' });
let clock = 0;

interface Member {
  cluster: Cluster;
  relay: Relay;
}

async function member(t: Test, relayId: string): Promise<Member> {
  const cluster = await joinCluster({ url: nats.url, relayId, subnet: DEFAULT_SUBNET, logger, standInIdleMs: IDLE_MS, now: () => clock });
  const relay = await startRelay({ host: '127.0.0.1', port: 0, store: cluster.store, logger, remote: cluster.routing });
  cluster.attach(relay);
  t.teardown(async () => {
    await relay.close();
    await cluster.close();
  });
  return { cluster, relay };
}

function take<P extends Packet>(c: RawClient, match: (p: Packet) => p is P): P | undefined {
  const index = c.queue.findIndex(match);
  return index < 0 ? undefined : (c.queue.splice(index, 1)[0] as P);
}

/** Asks a → x:port's status until the cluster knows where x is (presence takes milliseconds); x answers Listening. */
async function statusAcross(a: RawClient, aIp: number, aPort: number, x: RawClient, xIp: number, port: number): Promise<void> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const requestId = nextId();
    a.send({ type: PacketType.SocketStatusRequest, requestId, source: { ip: aIp, port: aPort }, destination: { ip: xIp, port } });
    for (;;) {
      if (performance.now() > deadline) throw new Error(`x:${port} not reachable from a within 20 s`);
      const forwarded = take(x, (p): p is PacketOf<typeof PacketType.SocketStatusRequest> => p.type === PacketType.SocketStatusRequest);
      if (forwarded) x.send({ type: PacketType.SocketStatusResponse, requestId: forwarded.requestId, status: SocketStatus.Listening });
      const response = take(a, (p): p is PacketOf<typeof PacketType.SocketStatusResponse> => p.type === PacketType.SocketStatusResponse && p.requestId === requestId);
      if (response?.status === SocketStatus.Listening) return;
      const failed = take(a, (p): p is PacketOf<typeof PacketType.RequestFailed> => p.type === PacketType.RequestFailed && p.requestId === requestId);
      if (response || failed) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test('an idle stand-in is closed and comes back when needed; one carrying a pair stays', async (t) => {
  const [r1, r2] = [await member(t, 'idle1'), await member(t, 'idle2')];
  const { client: x, virtualIp: vx } = await RawClient.open({ port: r2.relay.port, localAddress: '127.4.0.2' });
  const { client: a, virtualIp: va } = await RawClient.open({ port: r1.relay.port, localAddress: '127.4.0.1' });
  t.teardown(() => Promise.all([a.close(), x.close()]));
  t.equal((await x.bind(7000)).status, 0);
  const { port: aPort } = await a.bind(0);

  await statusAcross(a, va.ip, aPort, x, vx.ip, 7000);
  t.equal(r1.cluster.routing.standIns, 1, 'r1 made a stand-in for x');
  t.equal(r2.cluster.routing.standIns, 1, 'r2 made a stand-in for a');
  const [ghostId] = [...r1.cluster.routing.ghostIds];

  clock += IDLE_MS - 1;
  t.equal(r1.cluster.routing.closeIdleStandIns(), 0, 'not yet idle long enough');
  clock += 1;
  const released = nextEvent(r1.relay.bus, 'client.disconnected');
  r1.cluster.routing.closeIdleStandIns();
  r2.cluster.routing.closeIdleStandIns();
  t.equal(r1.cluster.routing.standIns, 0, "r1's stand-in is closed");
  t.equal(r2.cluster.routing.standIns, 0, "r2's stand-in is closed");
  t.equal((await released).id, ghostId, 'r1 released its connection');

  await statusAcross(a, va.ip, aPort, x, vx.ip, 7000);
  t.equal(r1.cluster.routing.standIns, 1, 'the next request made a new stand-in');

  // A connection across: its stand-ins carry a pair and stay, however long nothing else used them.
  const requestId = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: va.ip, port: aPort }, destination: { ip: vx.ip, port: 7000 } });
  const request = await x.next(PacketType.SocketConnectionRequest, 12_000);
  x.send({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted });
  const response = await a.next(PacketType.SocketConnectionResponse, 12_000);
  t.equal(response.status, ConnectionStatus.Accepted);
  clock += 10 * IDLE_MS;
  t.equal(r1.cluster.routing.closeIdleStandIns(), 0, 'r1 keeps the stand-in carrying a pair');
  t.equal(r2.cluster.routing.closeIdleStandIns(), 0, 'r2 keeps the stand-in carrying a pair');
  x.collect = true;
  const bytes = randomBytes(50_000);
  a.send({ type: PacketType.ArbitraryData, connectionId: response.connectionId, data: bytes });
  const size = () => (x.received.get(request.connectionId) ?? []).reduce((n, b) => n + b.length, 0);
  await waitFor(() => size() === bytes.length, 'the bytes to cross');
  t.same(Buffer.concat(x.received.get(request.connectionId)!), bytes, 'bytes intact across the kept stand-ins');

  // The pair ends: the stand-ins are idle once the idle time has passed since.
  a.send({ type: PacketType.SocketClosed, connectionId: response.connectionId, reason: CloseReason.Normal });
  await within('x to see the connection closed', x.next(PacketType.SocketClosed, 12_000));
  // Both relays forgot the pair before x heard of it: r1 as it passed the close to the link, r2 as it took it off.
  t.equal(r1.cluster.routing.standIns, 1, 'r1 still has the stand-in until the idle time passed');
  clock += IDLE_MS;
  await waitFor(() => (r1.cluster.routing.closeIdleStandIns(), r1.cluster.routing.standIns === 0), "r1's stand-in to close once the pair ended");
  await waitFor(() => (r2.cluster.routing.closeIdleStandIns(), r2.cluster.routing.standIns === 0), "r2's stand-in to close once the pair ended");
});

t.test("closing an idle stand-in of a host that has since moved to this relay keeps the host's presence here", async (t) => {
  const [r1, r2] = [await member(t, 'moved1'), await member(t, 'moved2')];
  const { client: x, virtualIp: vx } = await RawClient.open({ port: r2.relay.port, localAddress: '127.4.1.2' });
  const first = await RawClient.open({ port: r1.relay.port, localAddress: '127.4.1.1' });
  t.teardown(() => Promise.all([first.client.close(), x.close()]));
  const va = first.virtualIp;
  t.equal((await x.bind(7000)).status, 0);
  const { port: aPort } = await first.client.bind(0);
  await statusAcross(first.client, va.ip, aPort, x, vx.ip, 7000);
  t.equal(r2.cluster.routing.standIns, 1, 'r2 made a stand-in for a');

  // a leaves r1 and comes back on r2, beside its own stand-in there.
  await first.client.close();
  const again = await RawClient.open({ port: r2.relay.port, localAddress: '127.4.1.1' });
  t.teardown(() => again.client.close());
  t.equal(again.virtualIp.ip, va.ip, 'a keeps its address on r2');
  await waitFor(() => r2.cluster.presence.holder(va.ip) === 'moved2', 'r2 to hold a');

  clock += IDLE_MS;
  const released = nextEvent(r2.relay.bus, 'client.disconnected');
  t.equal(r2.cluster.routing.closeIdleStandIns(), 1, "r2 closes a's idle stand-in");
  await released;
  // Let every listener of the disconnect run before looking.
  await new Promise((resolve) => setTimeout(resolve, 10));
  t.equal(r2.cluster.presence.holder(va.ip), 'moved2', "the stand-in's exit is not a's: r2 still holds a");
  t.ok(r2.cluster.presence.held.has(va.ip), "a is still among r2's hosts");
});
