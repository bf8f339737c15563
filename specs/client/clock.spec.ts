/**
 * connect({ clock }): the client's timeouts run on the clock it is given, so a spec moves
 * xstate's SimulatedClock instead of sleeping 15 s (a request) or 45 s (keepalive silence).
 * The relay here is a stub on loopback that answers Hello and then stays silent.
 */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import type { Test } from 'tap';
import { SimulatedClock } from 'xstate';
import { FrameDecoder, PROTOCOL_VERSION, PacketType, decodeFrame, encodePacket, parseIpv4 } from '../../protocol/index.ts';
import type { Packet } from '../../protocol/index.ts';
import { connect } from '../../actors/client/index.ts';
import type { ConnectOptions } from '../../actors/client/index.ts';
import { within } from '../helpers/wait.ts';

/** Real-time guard for waits that should end at once: a failure names what never happened. */
const WAIT_MS = 10_000;
const KEEPALIVE_TIMEOUT_MS = 45_000;

/** A relay stub: answers Hello with VirtualIP, then records what the client sends and answers nothing. */
async function silentRelay(t: Test): Promise<{ port: number; received: (type: number) => Promise<Packet>; closed: Promise<void> }> {
  const seen: Packet[] = [];
  const waiters: Array<{ type: number; resolve: (p: Packet) => void }> = [];
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      sockets.delete(socket);
      onClosed();
    });
    socket.on('error', () => {});
    const decoder = new FrameDecoder((_type, frame) => {
      const packet = decodeFrame(frame);
      if (packet instanceof Error) return;
      if (packet.type === PacketType.Hello) {
        socket.write(
          encodePacket({
            type: PacketType.VirtualIp,
            version: PROTOCOL_VERSION,
            ip: parseIpv4('10.0.0.9') as number,
            keepaliveIntervalMs: 15_000,
            keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
            maxFrameBytes: 65_536 + 9,
          }),
        );
        return;
      }
      seen.push(packet);
      for (const w of waiters.filter((w) => w.type === packet.type)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(packet);
      }
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    received: (type) => {
      const already = seen.find((p) => p.type === type);
      if (already) return Promise.resolve(already);
      return new Promise((resolve) => waiters.push({ type, resolve }));
    },
    closed,
  };
}

async function clientOf(t: Test, port: number, options: ConnectOptions) {
  const client = await within('the stub relay to connect', connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2', ...options }), WAIT_MS);
  t.teardown(() => client.close());
  return client;
}

t.test('a server that never answers Hello: connect() fails at connectTimeoutMs of simulated time', async (t) => {
  const server = net.createServer(() => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const clock = new SimulatedClock();
  const connecting = connect({
    host: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    localAddress: '127.0.0.2',
    clock,
    connectTimeoutMs: 10_000,
  });
  let settled = false;
  const outcome = connecting.then(
    (client) => (void client.close(), (settled = true), undefined),
    (error: unknown) => ((settled = true), error),
  );
  // Connected at TCP level, Hello sent, no answer: only the clock can end it now.
  await within('the TCP connection', once(server, 'connection'), WAIT_MS);
  clock.increment(9_999);
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.notOk(settled, 'still waiting 1 ms before the timeout');
  clock.increment(1);
  t.match(await within('connect() to settle', outcome, WAIT_MS), { code: 'ERR_RELAY_UNREACHABLE', message: /within 10000 ms/ });
});

t.test('a request the relay never answers fails with ERR_TIMEOUT after requestTimeoutMs of simulated time', async (t) => {
  const relay = await silentRelay(t);
  const clock = new SimulatedClock();
  const client = await clientOf(t, relay.port, { clock, requestTimeoutMs: 15_000 });
  let settled = false;
  const binding = client.socket().bind(7);
  binding.then(
    () => (settled = true),
    () => (settled = true),
  );
  await within('the BindRequest at the relay', relay.received(PacketType.BindRequest), WAIT_MS);
  clock.increment(14_999);
  // Let every promise reaction run: a timeout that fired would have settled bind() by now.
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.notOk(settled, 'still waiting 1 ms before the timeout');
  clock.increment(1);
  const error = await within('bind() to settle', binding.then(() => undefined, (e: unknown) => e), WAIT_MS);
  t.match(error, { code: 'ERR_TIMEOUT', message: /bind 7: no answer from the relay within 15000 ms/ });
  t.equal(client.state, 'connected', 'a request timeout does not end the session');
});

t.test('a relay silent past its keepalive timeout is lost, on simulated time', async (t) => {
  const relay = await silentRelay(t);
  const clock = new SimulatedClock();
  const client = await clientOf(t, relay.port, { clock });
  clock.increment(KEEPALIVE_TIMEOUT_MS - 1);
  t.equal(client.state, 'connected', 'not yet');
  clock.increment(1);
  t.equal(client.state, 'closed', 'lost at the keepalive timeout (no reconnect: closed)');
  t.match(client.actor.getSnapshot().context.error, { code: 'ERR_RELAY_LOST', message: /silent for 45000 ms/ });
  await within('the client to close its TCP connection', relay.closed, WAIT_MS);
});

t.test('with reconnect, the backoff waits on the same clock', async (t) => {
  const relay = await silentRelay(t);
  const clock = new SimulatedClock();
  const client = await clientOf(t, relay.port, { clock, reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
  clock.increment(KEEPALIVE_TIMEOUT_MS);
  t.equal(client.state, 'reconnecting.waiting', 'lost, waiting out the backoff');
  clock.increment(59_999);
  t.equal(client.state, 'reconnecting.waiting', 'a simulated minute, less 1 ms');
  clock.increment(1);
  t.equal(client.state, 'reconnecting.dialing');
  await within(
    'the client to reconnect to the stub',
    new Promise<void>((resolve) => {
      const sub = client.actor.subscribe((s) => {
        if (s.matches('connected')) (sub.unsubscribe(), resolve());
      });
    }), WAIT_MS,
  );
  t.equal(client.virtualIp, '10.0.0.9');
});
