/**
 * forwardUdp() and exposeUdp() in one process (docs/TUNNELS.md "--udp"): each local sender is a
 * flow of its own with its own virtual datagram port, replies go back to the sender they answer,
 * and the flow table's bound closes the flow idle longest, freeing its virtual port at the relay.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import t from 'tap';
import type { Test } from 'tap';
import { exposeUdp, forwardUdp } from '../../tunnel/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { within } from '../helpers/wait.ts';

const WAIT_MS = 5_000;

/** A loopback UDP socket and a way to await its next datagram (failing after WAIT_MS). */
async function udpPeer(t: Test): Promise<{ socket: dgram.Socket; next: (what: string) => Promise<Buffer> }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.teardown(() => socket.close());
  const queue: Buffer[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (bytes) => {
    queue.push(bytes);
    wake?.();
  });
  const next = (what: string): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const take = (): boolean => {
        const bytes = queue.shift();
        if (bytes === undefined) return false;
        clearTimeout(timer);
        wake = undefined;
        resolve(bytes);
        return true;
      };
      const timer = setTimeout(() => reject(new Error(`no datagram (${what}) within ${WAIT_MS} ms`)), WAIT_MS);
      if (!take()) wake = () => void take();
    });
  return { socket, next };
}

t.test('one flow per sender, replies to their sender; beyond maxFlows the flow idle longest goes and its port is freed', async (t) => {
  const relay = await relayFor(t);
  const server = await clientFor(t, relay, 2);
  const player = await clientFor(t, relay, 3);
  // The echo answers with who it saw, so each sender can tell the expose used a socket per peer.
  const echo = dgram.createSocket('udp4');
  echo.on('message', (bytes, rinfo) => echo.send(Buffer.concat([bytes, Buffer.from(`|${rinfo.port}`)]), rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  t.teardown(() => echo.close());
  const exposed = await exposeUdp({ client: server, port: 7777, target: { host: '127.0.0.1', port: echo.address().port } });
  t.teardown(() => exposed.close());
  const forwarded = await forwardUdp({ client: player, localPort: 0, remote: { address: server.virtualIp, port: 7777 }, maxFlows: 2 });
  t.teardown(() => forwarded.close());

  const [a, b, c] = [await udpPeer(t), await udpPeer(t), await udpPeer(t)];
  const ask = async (peer: typeof a, text: string): Promise<[string, string]> => {
    peer.socket.send(text, forwarded.port, '127.0.0.1');
    const [said, seenPort] = (await peer.next(text)).toString().split('|');
    return [said, seenPort];
  };
  const [aSaid, aSeen] = await ask(a, 'from a');
  const [bSaid, bSeen] = await ask(b, 'from b');
  t.same([aSaid, bSaid], ['from a', 'from b'], 'each sender gets its own echo');
  t.not(aSeen, bSeen, 'the target saw two peers: the expose keeps a socket per virtual peer');
  t.same((await ask(a, 'a again'))[1], aSeen, "a's flow is kept: same socket at the target");
  t.match(forwarded.stats(), { flows: 2, totalFlows: 2, expiredFlows: 0 });

  // b is now the flow idle longest: a third sender closes it.
  await ask(c, 'from c');
  t.match(forwarded.stats(), { flows: 2, totalFlows: 3, expiredFlows: 1 });
  // Binds are answered in order: once this one is, the evicted flow's DatagramUnbind was handled.
  const probe = await player.datagram(0);
  t.equal(relay.counters.datagramPortCount, 1 + 2 + 1, "the expose's port, two flows and the probe: b's port was freed");
  probe.close();
  const [bAgain] = await ask(b, 'b again');
  t.equal(bAgain, 'b again', 'a sender whose flow was closed gets a new one');
  t.match(forwarded.stats(), { flows: 2, totalFlows: 4, expiredFlows: 2, dropped: 0 });
});

t.test('a signal that aborts as the virtual datagram port is bound closes the tunnel cleanly', async (t) => {
  const relay = await relayFor(t);
  const server = await clientFor(t, relay, 2);
  const controller = new AbortController();
  // The abort lands between the bind's answer and the tunnel's own set-up after it: the tunnel
  // sees an already-aborted signal while it still makes its teardown.
  const client = new Proxy(server, {
    get(target, key) {
      if (key !== 'datagram') {
        // The client's own object behind every other member: its private fields are its own.
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      }
      return async (...args: Parameters<typeof server.datagram>) => {
        const socket = await target.datagram(...args);
        controller.abort();
        return socket;
      };
    },
  });
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  t.teardown(() => void process.off('unhandledRejection', onRejection));
  const exposed = await exposeUdp({ client, port: 7778, target: { host: '127.0.0.1', port: 9 }, signal: controller.signal });
  await within('the aborted tunnel to close', exposed.closed, WAIT_MS);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(rejections, [], 'no unhandled rejection from the teardown');
  // Its virtual port was given back: a new bind of the same port succeeds.
  const again = await server.datagram(7778);
  t.ok(again, 'port 7778 is free again');
  again.close();
});
