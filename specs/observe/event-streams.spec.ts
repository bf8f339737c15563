import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { EventEmitter } from 'eventemitter3';
import { startObserveServer, type ObserveServer } from '../../observe/observe-server.ts';
import { createRelayMetrics } from '../../observe/metrics.ts';
import type { RelayBus, RelayBusEvents } from '../../actors/relay/relay-events.ts';
import { WAIT_MS, fetchWithin, within } from './wait.ts';

/** Big pushes, so a reader that stops fills the kernel's buffers within a few dozen of them. */
const BLOB = 'x'.repeat(256 * 1024);

/** A server whose status is a sequence number and a 256 KiB blob, pushed when `change()` is called. */
async function bigStatusServer(t: Test, options: { maxStreamQueuedBytes: number; streamDrainTimeoutMs: number }) {
  let seq = 0;
  let notify: (() => void) | undefined;
  const metrics = createRelayMetrics({ bus: new EventEmitter<RelayBusEvents>() as RelayBus, defaultMetrics: false });
  const server = await startObserveServer({
    status: () => ({ seq, blob: BLOB }),
    onChange: (listener) => {
      notify = listener;
      return () => (notify = undefined);
    },
    metrics,
    pushIntervalMs: 1,
    heartbeatIntervalMs: 20,
    ...options,
  });
  t.teardown(async () => {
    await server.close();
    metrics.close();
  });
  return {
    server,
    metrics,
    change: () => {
      seq++;
      notify?.();
      return seq;
    },
  };
}

/** A subscriber that reads everything and resolves `until(seq)` once it has seen that push. */
function reader(t: Test, server: ObserveServer) {
  let latest = -1;
  let buffer = '';
  const waiters: { seq: number; resolve: () => void }[] = [];
  const req = http.get(`${server.url}/api/events`, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').find((l) => l.startsWith('data: '));
        buffer = buffer.slice(end + 2);
        if (data) latest = (JSON.parse(data.slice(6)) as { seq: number }).seq;
        for (const w of waiters.filter((w) => latest >= w.seq)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  });
  t.teardown(() => req.destroy());
  return {
    until: (seq: number) =>
      new Promise<void>((resolve, reject) => {
        if (latest >= seq) return resolve();
        const timer = setTimeout(() => reject(new Error(`push ${seq} not read within ${WAIT_MS} ms (latest ${latest})`)), WAIT_MS);
        waiters.push({ seq, resolve: () => (clearTimeout(timer), resolve()) });
      }),
  };
}

/** The next stream the server cuts, or a failure after WAIT_MS. */
function nextDrop(server: ObserveServer): Promise<{ reason: string; queuedBytes: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no stream cut within ${WAIT_MS} ms`)), WAIT_MS);
    server.streams.once('stream.dropped', (event) => {
      clearTimeout(timer);
      resolve(event);
    });
  });
}

/** A subscriber that sends the request and then never reads a byte. */
async function stalledSubscriber(t: Test, server: ObserveServer): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port: server.port });
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  await within('the stalled subscriber connects', once(socket, 'connect'));
  socket.pause();
  socket.write('GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  return socket;
}

async function waitFor(what: string, check: () => boolean, server: ObserveServer, bystander: ReturnType<typeof reader>, change: () => number) {
  // Each round is one push that the bystander must read: progress, never a sleep.
  for (let round = 0; round < 400 && !check(); round++) await bystander.until(change());
  if (!check()) throw new Error(`${what}: not after 400 pushes`);
}

t.test('a subscriber that never reads holds at most one push in the relay, and the others keep up', async (t) => {
  const { server, change } = await bigStatusServer(t, { maxStreamQueuedBytes: 64 * 1024 * 1024, streamDrainTimeoutMs: 60_000 });
  const bystander = reader(t, server);
  await bystander.until(0);
  await stalledSubscriber(t, server);
  // Push until the stalled stream's kernel buffers are full and the relay starts to queue for it.
  await waitFor('the stalled stream backs up', () => server.streams.queuedBytes() > 0, server, bystander, change);
  let most = 0;
  // 25 MiB more of pushes: the old server queued every one of them for the stalled reader.
  for (let i = 0; i < 100; i++) {
    await bystander.until(change());
    most = Math.max(most, server.streams.queuedBytes());
  }
  t.ok(most <= 2 * (BLOB.length + 1024), `queued for the stalled stream at most ${most} bytes: one push, not 100`);
  t.equal(server.streams.size, 2, 'both streams open: the stall is within its drain timeout');
});

t.test('a stalled subscriber is cut after the drain timeout and counted', async (t) => {
  const { server, metrics, change } = await bigStatusServer(t, { maxStreamQueuedBytes: 64 * 1024 * 1024, streamDrainTimeoutMs: 200 });
  const bystander = reader(t, server);
  await bystander.until(0);
  await stalledSubscriber(t, server);
  const dropped = nextDrop(server);
  await waitFor('the stalled stream backs up', () => server.streams.queuedBytes() > 0, server, bystander, change);
  const event = await dropped;
  t.equal(event.reason, 'stalled');
  t.equal(server.streams.size, 1, 'the reading stream stays');
  await bystander.until(change());
  const text = await metrics.metrics();
  t.match(text, /alphanet_http_event_streams_dropped_total\{reason="stalled"\} 1\n/);
  t.match(text, /alphanet_http_event_streams 1\n/);
});

t.test('a subscriber still holding more than the byte cap at the next push is cut and counted', async (t) => {
  const { server, metrics, change } = await bigStatusServer(t, { maxStreamQueuedBytes: 64 * 1024, streamDrainTimeoutMs: 60_000 });
  const bystander = reader(t, server);
  await bystander.until(0);
  await stalledSubscriber(t, server);
  const dropped = nextDrop(server);
  await waitFor('the stalled stream is cut', () => server.streams.size === 1, server, bystander, change);
  const event = await dropped;
  t.equal(event.reason, 'queue');
  t.ok(event.queuedBytes > 64 * 1024, 'cut when over the cap');
  t.match(await metrics.metrics(), /alphanet_http_event_streams_dropped_total\{reason="queue"\} 1\n/);
});

t.test('more than --http-max-streams subscribers get 503, counted', async (t) => {
  const metrics = createRelayMetrics({ bus: new EventEmitter<RelayBusEvents>() as RelayBus, defaultMetrics: false });
  const server = await startObserveServer({ status: () => ({}), metrics, maxEventStreams: 1 });
  t.teardown(async () => {
    await server.close();
    metrics.close();
  });
  const first = await fetchWithin(`${server.url}/api/events`);
  t.equal(first.status, 200);
  t.teardown(() => first.body?.cancel());
  t.equal((await fetchWithin(`${server.url}/api/events`)).status, 503);
  t.match(await metrics.metrics(), /alphanet_http_event_streams_rejected_total 1\n/);
});
