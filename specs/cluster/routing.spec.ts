/**
 * Routing across relays (actors/relay/cluster/routing.ts) with three relay processes on one
 * nats-server: a client on one relay reaches a listener on another, bytes cross intact and in
 * order both ways under the protocol's windows with a receiver that stops reading, and a relay
 * killed with -9 mid-transfer resets the connections through it with SocketClosed(Error).
 */
import t, { type Test } from 'tap';
import { randomBytes, createHash } from 'node:crypto';
import { CloseReason, ConnectionStatus, FailureReason, PacketType, SocketStatus, encodePacket, type Packet, type PacketOf } from '../../protocol/index.ts';
import { RawClient, nextId } from '../helpers/raw-client.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { within } from '../helpers/wait.ts';
import { clusterRelays, type Cleanup, type StartedRelay } from './cluster-relays.ts';
import { killHard } from '../helpers/child-process.ts';

const nats = await startNatsServer(t);

type Tap = Test;

const relays = (t: Cleanup, ids: string[]): Promise<StartedRelay[]> => clusterRelays(t, ids, [nats.url]);

/** Takes the first queued packet matching `match` off `c`'s queue. */
function take<P extends Packet>(c: RawClient, match: (p: Packet) => p is P): P | undefined {
  const index = c.queue.findIndex(match);
  return index < 0 ? undefined : (c.queue.splice(index, 1)[0] as P);
}

/**
 * Asks for x:port's status from `a` until the route is known: the other relays learn of a new
 * host (or of its move to another relay) through presence and the address map's watch, a few
 * milliseconds after it connects; until then the answer is Offline or NotBound. `x` answers
 * Listening to whatever reaches it. Polls the clients' queues, so no waiter is left behind to
 * swallow a later packet.
 */
async function statusOnceKnown(t: Tap, a: RawClient, aIp: number, aPort: number, xIp: number, port: number, x: RawClient): Promise<number> {
  const deadline = performance.now() + 20_000;
  let attempts = 0;
  for (;;) {
    const requestId = nextId();
    attempts++;
    a.send({ type: PacketType.SocketStatusRequest, requestId, source: { ip: aIp, port: aPort }, destination: { ip: xIp, port } });
    for (;;) {
      if (performance.now() > deadline) throw new Error(`x:${port} not reachable from a after ${attempts} status requests`);
      const forwarded = take(x, (p): p is PacketOf<typeof PacketType.SocketStatusRequest> => p.type === PacketType.SocketStatusRequest);
      if (forwarded) x.send({ type: PacketType.SocketStatusResponse, requestId: forwarded.requestId, status: SocketStatus.Listening });
      const response = take(a, (p): p is PacketOf<typeof PacketType.SocketStatusResponse> => p.type === PacketType.SocketStatusResponse && p.requestId === requestId);
      if (response && response.status === SocketStatus.Listening) {
        t.equal(response.requestId, requestId, 'the answer carries the requester’s own id');
        return response.status;
      }
      const failed = take(a, (p): p is PacketOf<typeof PacketType.RequestFailed> => p.type === PacketType.RequestFailed && p.requestId === requestId);
      if (failed && failed.reason !== FailureReason.Offline) throw new Error(`status request failed with reason ${failed.reason}`);
      if (response || failed) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Connects a → x:port across relays; returns both ends' connection ids. */
async function connectAcross(t: Tap, a: RawClient, aIp: number, aPort: number, x: RawClient, xIp: number, port: number): Promise<{ ca: number; cx: number }> {
  const requestId = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: aIp, port: aPort }, destination: { ip: xIp, port } });
  const request = await x.next(PacketType.SocketConnectionRequest, 12_000);
  t.equal(request.source.ip, aIp, "the target sees the requester's own virtual IP");
  t.equal(request.source.port, aPort);
  x.send({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted });
  const response = await a.next(PacketType.SocketConnectionResponse, 12_000);
  t.equal(response.status, ConnectionStatus.Accepted);
  t.equal(response.requestId, requestId);
  return { ca: response.connectionId, cx: request.connectionId };
}

const digest = (chunks: Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
};

t.test('a client on r1 reaches a listener on r2: handshake and bytes both ways', async (t) => {
  const [r1, r2] = await relays(t, ['route1', 'route2']);
  const { client: x, virtualIp: vx } = await RawClient.open({ port: r2.port, localAddress: '127.3.0.2' });
  const { client: a, virtualIp: va } = await RawClient.open({ port: r1.port, localAddress: '127.3.0.1' });
  t.teardown(() => Promise.all([a.close(), x.close()]));
  t.equal((await x.bind(7000)).status, 0);
  const { port: aPort } = await a.bind(0);
  t.equal(await statusOnceKnown(t, a, va.ip, aPort, vx.ip, 7000, x), SocketStatus.Listening, 'Listening, answered by the client on the other relay');
  const { ca, cx } = await connectAcross(t, a, va.ip, aPort, x, vx.ip, 7000);
  a.collect = true;
  x.collect = true;
  // Within the initial window (1 MiB) each way: no WindowUpdate needed.
  const toX = randomBytes(900_000);
  const toA = randomBytes(700_000);
  for (let i = 0; i < toX.length; i += 60_000) a.send({ type: PacketType.ArbitraryData, connectionId: ca, data: toX.subarray(i, i + 60_000) });
  for (let i = 0; i < toA.length; i += 50_000) x.send({ type: PacketType.ArbitraryData, connectionId: cx, data: toA.subarray(i, i + 50_000) });
  const size = (c: RawClient, id: number) => (c.received.get(id) ?? []).reduce((n, b) => n + b.length, 0);
  await within('both directions delivered', (async () => {
    while (size(x, cx) < toX.length || size(a, ca) < toA.length) await new Promise((resolve) => setTimeout(resolve, 10));
  })());
  t.equal(digest(x.received.get(cx)!), digest([toX]), 'a → x intact and in order');
  t.equal(digest(a.received.get(ca)!), digest([toA]), 'x → a intact and in order');
  // A close crosses too, with its reason.
  a.send({ type: PacketType.SocketClosed, connectionId: ca, reason: CloseReason.Normal });
  const closed = await x.next(PacketType.SocketClosed, 12_000);
  t.same([closed.connectionId, closed.reason], [cx, CloseReason.Normal]);
});

t.test('a target that writes the moment it accepts (accept, data and SocketEnd in one write) is heard in full, every time', async (t) => {
  const [r1, r2] = await relays(t, ['early1', 'early2']);
  const { client: x, virtualIp: vx } = await RawClient.open({ port: r2.port, localAddress: '127.3.1.2' });
  const { client: a, virtualIp: va } = await RawClient.open({ port: r1.port, localAddress: '127.3.1.1' });
  t.teardown(() => Promise.all([a.close(), x.close()]));
  t.equal((await x.bind(7100)).status, 0);
  const { port: aPort } = await a.bind(0);
  await statusOnceKnown(t, a, va.ip, aPort, vx.ip, 7100, x);
  a.collect = true;
  // Each round the target's relay hands its stand-in the accept and what follows in one go: the
  // banner and the end must wait for the cross-relay join, never be dropped before it.
  for (let round = 1; round <= 10; round++) {
    const requestId = nextId();
    a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: va.ip, port: aPort }, destination: { ip: vx.ip, port: 7100 } });
    const request = (await x.next(PacketType.SocketConnectionRequest, 12_000)) as PacketOf<typeof PacketType.SocketConnectionRequest>;
    const banner = Buffer.from(`banner ${round}: ${'x'.repeat(round * 100)}`);
    x.send(
      Buffer.concat([
        encodePacket({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted }),
        encodePacket({ type: PacketType.ArbitraryData, connectionId: request.connectionId, data: banner }),
        encodePacket({ type: PacketType.SocketEnd, connectionId: request.connectionId }),
      ]),
    );
    const response = (await a.next(PacketType.SocketConnectionResponse, 12_000)) as PacketOf<typeof PacketType.SocketConnectionResponse>;
    t.equal(response.status, ConnectionStatus.Accepted, `round ${round}: accepted`);
    const ended = (await a.next(PacketType.SocketEnd, 12_000)) as PacketOf<typeof PacketType.SocketEnd>;
    t.equal(ended.connectionId, response.connectionId, `round ${round}: the end arrives, after the data`);
    t.equal(Buffer.concat(a.received.get(response.connectionId) ?? []).toString(), banner.toString(), `round ${round}: the banner arrived whole`);
    a.send({ type: PacketType.SocketClosed, connectionId: response.connectionId, reason: CloseReason.Normal });
    await x.next(PacketType.SocketClosed, 12_000);
  }
});

/** Sends `data` on `connectionId` keeping to the credit the receiver grants (§7), in 64 KiB frames. */
async function sendWithinWindow(c: RawClient, connectionId: number, data: Uint8Array, sent: { bytes: number }): Promise<void> {
  let credit = 1024 * 1024;
  while (sent.bytes < data.length) {
    const size = Math.min(64 * 1024, data.length - sent.bytes);
    while (credit < size) credit += (await c.next(PacketType.WindowUpdate, 20_000)).bytes;
    c.send({ type: PacketType.ArbitraryData, connectionId, data: data.subarray(sent.bytes, sent.bytes + size) });
    credit -= size;
    sent.bytes += size;
  }
}

/** Receives on `connectionId`, granting back every 256 KiB read; resolves with everything once `total` came. */
function receiveGranting(c: RawClient, connectionId: number, total: number): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  let ungranted = 0;
  return new Promise((resolve) => {
    c.onData = (id, data) => {
      if (id !== connectionId) return;
      chunks.push(data);
      got += data.length;
      ungranted += data.length;
      if (ungranted >= 256 * 1024) {
        c.send({ type: PacketType.WindowUpdate, connectionId, bytes: ungranted });
        ungranted = 0;
      }
      if (got >= total) resolve(chunks);
    };
  });
}

t.test('6 MiB across relays under the protocol windows, the receiver stopping for a while: intact, and the sender held back', async (t) => {
  const [r1, r2] = await relays(t, ['flow1', 'flow2']);
  const { client: x, virtualIp: vx } = await RawClient.open({ port: r2.port, localAddress: '127.3.1.2' });
  const { client: a, virtualIp: va } = await RawClient.open({ port: r1.port, localAddress: '127.3.1.1' });
  t.teardown(() => Promise.all([a.close(), x.close()]));
  await x.bind(7001);
  const { port: aPort } = await a.bind(0);
  await statusOnceKnown(t, a, va.ip, aPort, vx.ip, 7001, x);
  const { ca, cx } = await connectAcross(t, a, va.ip, aPort, x, vx.ip, 7001);
  const data = randomBytes(6 * 1024 * 1024);
  x.pause();
  const received = receiveGranting(x, cx, data.length);
  const sent = { bytes: 0 };
  const sending = sendWithinWindow(a, ca, data, sent);
  // The receiver reads nothing and grants nothing: the sender stops at its initial window.
  await within('the sender to use its initial window', (async () => {
    while (sent.bytes < 1024 * 1024) await new Promise((resolve) => setTimeout(resolve, 10));
  })());
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(sent.bytes, 1024 * 1024, 'held at 1 MiB while the receiver on the other relay reads nothing');
  x.resume();
  const chunks = await within('6 MiB across', received, 60_000);
  await sending;
  t.equal(digest(chunks), digest([data]), 'intact and in order');
});

t.test('a relay killed with -9 mid-transfer: connections through it end with SocketClosed(Error), others go on; its client comes back on another relay', async (t) => {
  const [r1, r2, r3] = await relays(t, ['kill1', 'kill2', 'kill3']);
  const { client: x, virtualIp: vx } = await RawClient.open({ port: r2.port, localAddress: '127.3.2.2' });
  const { client: a, virtualIp: va } = await RawClient.open({ port: r1.port, localAddress: '127.3.2.1' });
  // Two clients on r1 talking to each other: nothing to do with r2.
  const { client: b, virtualIp: vb } = await RawClient.open({ port: r1.port, localAddress: '127.3.2.3' });
  const { client: c, virtualIp: vc } = await RawClient.open({ port: r1.port, localAddress: '127.3.2.4' });
  t.teardown(() => Promise.all([a.close(), x.close(), b.close(), c.close()]));
  await x.bind(7002);
  const { port: aPort } = await a.bind(0);
  await statusOnceKnown(t, a, va.ip, aPort, vx.ip, 7002, x);
  const { ca, cx } = await connectAcross(t, a, va.ip, aPort, x, vx.ip, 7002);
  await c.bind(7003);
  const { port: bPort } = await b.bind(0);
  const local = await connectAcross(t, b, vb.ip, bPort, c, vc.ip, 7003);
  // Mid-transfer: a is sending to x when r2 dies.
  x.onData = () => {};
  a.send({ type: PacketType.ArbitraryData, connectionId: ca, data: randomBytes(200_000) });
  await killHard(r2.run.child);
  const closed = await a.next(PacketType.SocketClosed, 15_000);
  t.same([closed.connectionId, closed.reason], [ca, CloseReason.Error], 'the cross-relay connection is reset with SocketClosed(Error), not left hanging');
  void cx;
  c.collect = true;
  b.send({ type: PacketType.ArbitraryData, connectionId: local.ca, data: Buffer.from('still here') });
  await within('the same-relay pair to carry on', (async () => {
    while ((c.received.get(local.cx) ?? []).length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  })());
  t.equal(Buffer.concat(c.received.get(local.cx)!).toString(), 'still here', 'a pair on r1 alone is untouched');
  // x reconnects to r3: same address, listens again, and a reaches it again.
  const again = await RawClient.open({ port: r3.port, localAddress: '127.3.2.2' });
  t.teardown(() => again.client.close());
  t.equal(again.virtualIp.ip, vx.ip, 'the same virtual IP on r3');
  await again.client.bind(7002);
  const { port: aPort2 } = await a.bind(0);
  t.equal(await statusOnceKnown(t, a, va.ip, aPort2, vx.ip, 7002, again.client), SocketStatus.Listening, 'reachable again through r3');
});
