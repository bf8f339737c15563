/**
 * Test 5 of issue 6: many connected idle clients, each with a listening socket, plus a set of
 * active socket connections; the relay's RSS per idle client and its event-loop lag while they
 * sit there. The baseline is a plain Node TCP server (own process) holding the same number of
 * idle sockets: the floor any Node server pays per connection.
 *
 * Event-loop lag is measured from outside, as the round trip of a protocol Ping from a probe
 * client (Pong is answered on the relay's event loop, so a blocked loop shows as a late Pong),
 * compared with the same probe before the clients arrive.
 */
import net from 'node:net';
import { once } from 'node:events';
import { AddressBlock, sourceAddress } from '../lib/addresses.ts';
import { forEachLimited } from '../lib/parallel.ts';
import type { ScenarioResult } from '../lib/report.ts';
import { KIB, percentile } from '../lib/stats.ts';
import { pacedMessages, withDeadline } from '../load/drive.ts';
import type { RawClient, VirtualConnection } from '../load/raw-client.ts';
import { LISTEN_PORT, RelayProcess, SERVER_HOST, VirtualEnd, startProxy, type Pair } from '../load/transports.ts';
import { PHASE_DEADLINE_MS, type BenchContext } from './context.ts';

/**
 * RSS growth per client. RSS moves in pages and falls when the collector hands memory back, so with
 * a few clients (the specs' tiny sizes) the difference can read below zero: no growth measurable,
 * reported as 0 rather than as a negative size.
 */
function rssGrowthPerClient(before: number, after: number, clients: number): number {
  return Math.max(0, after - before) / clients;
}

/** RSS per idle client the relay may use (issue 6). */
export const RSS_PER_CLIENT_TARGET_BYTES = 16 * KIB;
/** Clients connecting at once while the crowd gathers. */
const CONNECT_CONCURRENCY = 200;
/** Gap between probe round trips. */
const PROBE_INTERVAL_MS = 20;
/** Messages per second each active connection sends while the clients sit. */
const ACTIVE_MESSAGES_PER_SECOND_EACH = 1;
/** Time the unloaded probe runs for, at most. */
const QUIET_PROBE_MS = 2000;

interface LagFigures {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

/** Probes with `roundTrip` every PROBE_INTERVAL_MS until `until` settles or `ms` pass. */
async function probe(roundTrip: () => Promise<number>, ms: number, until?: Promise<unknown>): Promise<LagFigures> {
  const samples: number[] = [];
  let stop = false;
  void until?.then(() => (stop = true), () => (stop = true));
  const end = performance.now() + ms;
  while (!stop && performance.now() < end) {
    samples.push(await withDeadline(roundTrip(), PHASE_DEADLINE_MS, 'probe round trip'));
    await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
  }
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), max: percentile(samples, 1), samples: samples.length };
}

interface ScaleFigures {
  rssBefore: number;
  rssAfter: number;
  perClientBytes: number;
  quiet: LagFigures;
  loaded: LagFigures;
  connectSeconds: number;
  activeLatencyP99Ms?: number;
}

async function relayScale(context: BenchContext): Promise<ScaleFigures> {
  const { idleClients, activeConnections, durationMs } = context.sizes;
  const relay = await RelayProcess.start(context.relay);
  const clients: RawClient[] = [];
  try {
    const prober = await relay.connect(sourceAddress(AddressBlock.scale, 0));
    clients.push(prober);
    const quiet = await probe(() => prober.ping(), Math.min(QUIET_PROBE_MS, durationMs));
    const rssBefore = await relay.child.rssBytes();
    const started = performance.now();
    const crowd: RawClient[] = new Array(idleClients);
    await withDeadline(
      forEachLimited(idleClients, CONNECT_CONCURRENCY, async (i) => {
        const client = await relay.connect(sourceAddress(AddressBlock.scale, 1 + i));
        clients.push(client);
        await client.listen(LISTEN_PORT);
        crowd[i] = client;
      }),
      PHASE_DEADLINE_MS,
      `${idleClients} clients connecting`,
    );
    const connectSeconds = (performance.now() - started) / 1000;
    const active = Math.min(activeConnections, Math.floor(idleClients / 2));
    const pairs: Pair[] = [];
    await forEachLimited(active, CONNECT_CONCURRENCY, async (i) => {
      const from = crowd[i];
      const to = crowd[i + Math.floor(idleClients / 2)];
      const accepted = new Promise<VirtualConnection>((resolve) => to.once('connection', resolve));
      const port = await from.bind(0);
      const a = await from.open(port, { ip: to.virtualIp, port: LISTEN_PORT });
      pairs.push({ a: new VirtualEnd(a, from), b: new VirtualEnd(await accepted, to) });
    });
    // The active connections trickle messages while the probe measures the loop.
    const traffic =
      pairs.length === 0
        ? undefined
        : pacedMessages(pairs, context.pattern, {
            messageBytes: KIB,
            messagesPerSecond: pairs.length * ACTIVE_MESSAGES_PER_SECOND_EACH,
            durationMs,
            warmupMs: 0,
            deadlineMs: durationMs + PHASE_DEADLINE_MS,
          });
    const loaded = await probe(() => prober.ping(), durationMs, traffic);
    const trafficResult = await traffic;
    const rssAfter = await relay.child.rssBytes();
    return {
      rssBefore,
      rssAfter,
      perClientBytes: rssGrowthPerClient(rssBefore, rssAfter, idleClients),
      quiet,
      loaded,
      connectSeconds,
      activeLatencyP99Ms: trafficResult ? percentile(trafficResult.latenciesMs, 0.99) : undefined,
    };
  } finally {
    for (const client of clients) client.close();
    await relay.stop();
  }
}

async function baselineScale(context: BenchContext): Promise<ScaleFigures> {
  const { idleClients, durationMs } = context.sizes;
  const server = await startProxy();
  const sockets: net.Socket[] = [];
  const open = async (n: number): Promise<net.Socket> => {
    const socket = net.connect({ host: SERVER_HOST, port: server.port, localAddress: sourceAddress(AddressBlock.scale, n), noDelay: true });
    sockets.push(socket);
    socket.on('error', () => socket.destroy());
    await once(socket, 'connect');
    return socket;
  };
  try {
    const prober = await open(0);
    const echo = (): Promise<number> => {
      const t0 = performance.now();
      prober.write('!');
      return once(prober, 'data').then(() => performance.now() - t0);
    };
    const quiet = await probe(echo, Math.min(QUIET_PROBE_MS, durationMs));
    const rssBefore = await server.rssBytes();
    const started = performance.now();
    await withDeadline(
      forEachLimited(idleClients, CONNECT_CONCURRENCY, async (i) => {
        await open(1 + i);
      }),
      PHASE_DEADLINE_MS,
      `${idleClients} TCP sockets connecting`,
    );
    const connectSeconds = (performance.now() - started) / 1000;
    const loaded = await probe(echo, durationMs);
    const rssAfter = await server.rssBytes();
    return { rssBefore, rssAfter, perClientBytes: rssGrowthPerClient(rssBefore, rssAfter, idleClients), quiet, loaded, connectSeconds };
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.stop();
  }
}

export async function scaleScenario(context: BenchContext): Promise<ScenarioResult> {
  const baseline = await baselineScale(context);
  context.log(`  plain server: ${(baseline.perClientBytes / KIB).toFixed(1)} KiB per socket, probe p99 ${baseline.loaded.p99.toFixed(2)} ms`);
  const relay = await relayScale(context);
  context.log(`  relay: ${(relay.perClientBytes / KIB).toFixed(1)} KiB per client, ping p99 ${relay.loaded.p99.toFixed(2)} ms (quiet ${relay.quiet.p99.toFixed(2)} ms)`);
  const name = '5 scale';
  const { idleClients, activeConnections } = context.sizes;
  return {
    name,
    rows: [
      {
        test: name,
        metric: `RSS per idle client, ${idleClients} clients`,
        unit: 'KiB',
        alphanet: relay.perClientBytes / KIB,
        baselineName: 'plain server',
        baseline: baseline.perClientBytes / KIB,
        comparison: 'ratio',
        target: `≤ ${RSS_PER_CLIENT_TARGET_BYTES / KIB} KiB`,
        met: relay.perClientBytes <= RSS_PER_CLIENT_TARGET_BYTES,
      },
      {
        test: name,
        metric: 'event-loop lag (ping RTT p50)',
        unit: 'ms',
        alphanet: relay.loaded.p50,
        baselineName: 'relay unloaded',
        baseline: relay.quiet.p50,
        comparison: 'added',
        target: '',
        met: undefined,
      },
      {
        test: name,
        metric: 'event-loop lag (ping RTT p99)',
        unit: 'ms',
        alphanet: relay.loaded.p99,
        baselineName: 'relay unloaded',
        baseline: relay.quiet.p99,
        comparison: 'added',
        target: '',
        met: undefined,
      },
    ],
    details: { idleClients, activeConnections, relay, plainServer: baseline },
  };
}
