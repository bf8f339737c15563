/**
 * Tests 9 and 10 (issue 10): TCP through an AlphaNET tunnel as a user runs it (source →
 * `alphanet forward` → relay → `alphanet expose` → sink, each its own process) against three
 * chained proxies (Node pipe() ×3, and socat ×3 where installed) in the same run: bulk for one
 * connection and for many at once, and 1 KiB request/response.
 */
import { perProcessRows, type Row, type ScenarioResult } from '../lib/report.ts';
import { KIB, percentile } from '../lib/stats.ts';
import { BenchIntegrityError, bulkTransfer, matchesPattern, PATTERN_BYTES, withDeadline } from '../load/drive.ts';
import {
  closeFlows,
  openTcpFlows,
  socatInstalled,
  startNodeChain,
  startSocatChain,
  startTunnelChain,
  type Chain,
  type TunnelChainOptions,
} from '../load/chains.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AcceptQueue, cliShippedNodeFlags, RelayProcess, TcpEnd, type Pair } from '../load/transports.ts';
import { PHASE_DEADLINE_MS, sharedRelay, userAddress, type BenchContext } from './context.ts';
import { timedRuns, type Measured, type RunFigures } from './measure.ts';
import { E2E_TARGET_RATIO, wholePatterns } from './api-bulk.ts';

/** Write size of the TCP sources. */
export const TUNNEL_WRITE_BYTES = 64 * KIB;
/** The tunnel must reach this share of the faster proxy chain (issue 10). */
export const TUNNEL_TARGET_RATIO = 0.8;
/** Request and response size of the ping-pong test. */
export const PING_BYTES = KIB;
/** Added p50 latency allowed over the Node proxy chain, in ms (issue 10). */
export const PING_ADDED_P50_TARGET_MS = 0.3;
const WARMUP_FRACTION = 0.125;
/** Round trips dropped at the start of each ping-pong phase. */
const PING_WARMUP_SHARE = 0.1;

/** The name of the tunnel chain through a relay serving TLS. */
export const TLS_TUNNEL = 'tunnel over TLS';
/** The name of the tunnel chain with end-to-end encryption between its two ends. */
export const E2E_TUNNEL = 'tunnel, e2e';
/** Tunnels are compared with the proxy chains; these with the plain tunnel. */
const TUNNEL_VARIANTS = new Set(['tunnel', TLS_TUNNEL, E2E_TUNNEL]);

/**
 * The tunnel as users run it by default: expose and forward over TLS to a relay of its own that
 * serves TLS (the bench's shared relay is plain TCP). Its known-relays file and the relay's key
 * live in one temporary directory.
 */
async function startTlsTunnel(context: BenchContext, target: { host: string; port: number }, nodeFlags: string[]): Promise<{ chain: Chain; extra: Measured[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-bench-tls-'));
  let relay: RelayProcess | undefined;
  try {
    relay = await RelayProcess.start({ ...context.relay, dbFile: path.join(dir, 'db.json'), tls: true });
    const chain = await startTunnelChain(target, {
      relay: { host: relay.host, port: relay.port },
      exposeAddress: userAddress(context),
      forwardAddress: userAddress(context),
      nodeFlags,
      tlsConfigDir: dir,
      name: TLS_TUNNEL,
    });
    const started = relay;
    return {
      chain: {
        ...chain,
        processes: chain.processes,
        close: async () => {
          await chain.close();
          await started.stop();
          await rm(dir, { recursive: true, force: true });
        },
      },
      extra: [{ name: 'relay', child: relay.child }],
    };
  } catch (error) {
    await relay?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * The tunnel on the bench's shared plain relay, the relay measured with it: the plain tunnel, and
 * with `options` the e2e one.
 */
async function startSharedRelayTunnel(
  context: BenchContext,
  target: { host: string; port: number },
  nodeFlags: string[],
  options: Pick<TunnelChainOptions, 'e2eDir' | 'name'> = {},
): Promise<{ chain: Chain; extra: Measured[] }> {
  const relay = await sharedRelay(context);
  const chain = await startTunnelChain(target, {
    relay: relay.relay,
    exposeAddress: userAddress(context),
    forwardAddress: userAddress(context),
    nodeFlags,
    ...options,
  });
  return { chain, extra: [{ name: 'relay', child: relay.relay.child }] };
}

/**
 * The tunnel with end-to-end encryption (Noise between the two tunnel processes' identities,
 * the CLI's default), on the shared plain relay as the plain tunnel: the difference between the
 * two is what e2e costs. Each end's identity and pins live under one temporary directory.
 */
async function startE2eTunnel(context: BenchContext, target: { host: string; port: number }, nodeFlags: string[]): Promise<{ chain: Chain; extra: Measured[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-bench-e2e-'));
  try {
    const { chain, extra } = await startSharedRelayTunnel(context, target, nodeFlags, { e2eDir: dir, name: E2E_TUNNEL });
    return {
      chain: {
        ...chain,
        close: async () => {
          await chain.close();
          await rm(dir, { recursive: true, force: true });
        },
      },
      extra,
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The chains compared, in order: the proxies first, the tunnel, then (when asked) the tunnel over TLS and with e2e. */
async function withChains<T>(
  context: BenchContext,
  sinkPort: number,
  body: (chain: Chain, processes: Measured[]) => Promise<T>,
  withTls = false,
): Promise<Map<string, T>> {
  const target = { host: '127.0.0.1', port: sinkPort };
  // The proxies run with the flags the tunnel processes ship with (bin/alphanet.js), and both with --node-flags.
  const nodeFlags = [...cliShippedNodeFlags(), ...(context.relay.nodeFlags ?? [])];
  const starters: Array<() => Promise<{ chain: Chain; extra: Measured[] }>> = [
    async () => ({ chain: await startNodeChain(target, nodeFlags), extra: [] }),
  ];
  if (socatInstalled()) starters.push(async () => ({ chain: await startSocatChain(target), extra: [] }));
  else context.log('  socat is not installed: the socat×3 chain is skipped (apt-get install socat)');
  starters.push(() => startSharedRelayTunnel(context, target, nodeFlags));
  if (withTls) {
    starters.push(() => startTlsTunnel(context, target, nodeFlags));
    starters.push(() => startE2eTunnel(context, target, nodeFlags));
  }
  const results = new Map<string, T>();
  for (const start of starters) {
    const { chain, extra } = await start();
    try {
      const processes = [...chain.processes.map((p) => ({ name: p.name, child: p.child })), ...extra];
      results.set(chain.name, await body(chain, processes));
    } finally {
      await chain.close();
    }
  }
  return results;
}

async function withSink<T>(body: (sink: AcceptQueue, port: number) => Promise<T>): Promise<T> {
  const sink = new AcceptQueue();
  const port = await sink.listen();
  try {
    return await body(sink, port);
  } finally {
    await sink.close();
  }
}

/** The faster of the proxy chains (all but the tunnel) by `figure`, higher is better. */
function fastest<T>(results: Map<string, T>, figure: (t: T) => number): [string, T] {
  const proxies = [...results].filter(([name]) => !TUNNEL_VARIANTS.has(name));
  return proxies.reduce((best, entry) => (figure(entry[1]) > figure(best[1]) ? entry : best));
}

export async function tunnelBulkScenario(context: BenchContext): Promise<ScenarioResult> {
  const counts = [1, Math.max(2, Math.round(context.sizes.tunnelFlows))];
  const bytes = wholePatterns(context.sizes.userPathBytes);
  const results = await withSink((sink, port) =>
    withChains(context, port, async (chain, processes) => {
      const byCount: Record<number, Awaited<ReturnType<typeof timedRuns>>> = {};
      for (const count of counts) {
        const perFlow = wholePatterns(bytes / count);
        const pairs = await withDeadline(openTcpFlows(chain.entry, sink, count, userAddress(context)), PHASE_DEADLINE_MS, `opening ${count} flows through ${chain.name}`);
        try {
          await bulkTransfer(pairs, context.pattern, wholePatterns(perFlow * WARMUP_FRACTION), TUNNEL_WRITE_BYTES, PHASE_DEADLINE_MS);
          byCount[count] = await timedRuns(context, `${chain.name}, ${count} connection${count === 1 ? '' : 's'}`, processes, () =>
            bulkTransfer(pairs, context.pattern, perFlow, TUNNEL_WRITE_BYTES, PHASE_DEADLINE_MS),
          );
        } finally {
          closeFlows(pairs);
        }
      }
      return byCount;
    }, true),
  );
  const name = '9 tunnel bulk';
  const rows: Row[] = [];
  const tunnel = results.get('tunnel')!;
  for (const count of counts) {
    const [bestName, best] = fastest(results, (r) => r[count].mbps);
    const metric = `throughput, ${count} connection${count === 1 ? '' : 's'}`;
    rows.push({
      test: name,
      metric,
      unit: 'MB/s',
      alphanet: tunnel[count].mbps,
      baselineName: bestName,
      baseline: best[count].mbps,
      comparison: 'ratio',
      target: `≥ ${TUNNEL_TARGET_RATIO.toFixed(2)}× faster chain`,
      met: tunnel[count].mbps >= TUNNEL_TARGET_RATIO * best[count].mbps,
    });
    for (const [other, figures] of results) {
      if (TUNNEL_VARIANTS.has(other) || other === bestName) continue;
      rows.push({ test: name, metric, unit: 'MB/s', alphanet: tunnel[count].mbps, baselineName: other, baseline: figures[count].mbps, comparison: 'ratio', target: '', met: undefined });
    }
    // What TLS (the CLI's default) costs a tunnel: the same chain, its relay serving TLS.
    const overTls = results.get(TLS_TUNNEL);
    if (overTls) {
      rows.push({ test: name, metric: `${metric}, TLS`, unit: 'MB/s', alphanet: overTls[count].mbps, baselineName: 'tunnel, plain TCP', baseline: tunnel[count].mbps, comparison: 'ratio', target: '', met: undefined });
    }
    const e2e = results.get(E2E_TUNNEL);
    if (e2e) rows.push(...e2eTunnelRows(name, metric, e2e[count], tunnel[count]));
  }
  return { name, rows, details: { bytesPerRun: bytes, writeBytes: TUNNEL_WRITE_BYTES, counts, figures: Object.fromEntries(results) } };
}

/** The e2e tunnel against the plain one (issue 12's target), and the CPU per GB of each of its processes. */
function e2eTunnelRows(test: string, metric: string, e2e: RunFigures, plain: RunFigures): Row[] {
  const rows: Row[] = [
    {
      test,
      metric: `${metric}, e2e (Noise)`,
      unit: 'MB/s',
      alphanet: e2e.mbps,
      baselineName: 'tunnel --no-e2e',
      baseline: plain.mbps,
      comparison: 'ratio',
      target: `≥ ${E2E_TARGET_RATIO.toFixed(2)}× --no-e2e`,
      met: e2e.mbps >= E2E_TARGET_RATIO * plain.mbps,
    },
  ];
  rows.push(
    ...perProcessRows(test, [['forward', 'forward'], ['expose', 'expose'], ['relay', 'relay']], (label) => `${metric}, e2e CPU per GB, ${label}`, 'CPU-s/GB', e2e.cpuSecondsPerGb, '--no-e2e', plain.cpuSecondsPerGb),
  );
  return rows;
}

/** Sends 1 KiB, waits for its echo, `rounds` times; returns each round trip in ms. */
async function pingPong(pair: Pair, pattern: Buffer, durationMs: number): Promise<Float64Array> {
  const client = pair.a as TcpEnd;
  const echo = (pair.b as TcpEnd).socket;
  echo.pipe(echo);
  const samples: number[] = [];
  const started = performance.now();
  let position = 0;
  let sentAt = 0;
  let received = 0;
  return new Promise<Float64Array>((resolve, reject) => {
    const next = (): void => {
      if (performance.now() - started >= durationMs) {
        resolve(Float64Array.from(samples.slice(Math.floor(samples.length * PING_WARMUP_SHARE))));
        return;
      }
      const at = position % PATTERN_BYTES;
      sentAt = performance.now();
      received = 0;
      client.write(pattern.subarray(at, at + PING_BYTES));
    };
    client.setOnData((chunk) => {
      if (!matchesPattern(pattern, chunk, position)) {
        reject(new BenchIntegrityError('ERR_BENCH_CORRUPT', `ping-pong: bytes at offset ${position} differ from those sent`));
        return;
      }
      position += chunk.length;
      received += chunk.length;
      if (received > PING_BYTES) reject(new BenchIntegrityError('ERR_BENCH_CORRUPT', `ping-pong: ${received} bytes came back for ${PING_BYTES}`));
      else if (received === PING_BYTES) {
        samples.push(performance.now() - sentAt);
        next();
      }
    });
    next();
  });
}

export async function tunnelPingPongScenario(context: BenchContext): Promise<ScenarioResult> {
  const { durationMs } = context.sizes;
  const results = await withSink((sink, port) =>
    withChains(context, port, async (chain) => {
      const pairs = await withDeadline(openTcpFlows(chain.entry, sink, 1, userAddress(context)), PHASE_DEADLINE_MS, `opening a flow through ${chain.name}`);
      try {
        const l = await withDeadline(pingPong(pairs[0], context.pattern, durationMs), durationMs + PHASE_DEADLINE_MS, `ping-pong through ${chain.name}`);
        const figure = { p50: percentile(l, 0.5), p99: percentile(l, 0.99), samples: l.length };
        context.log(`  ${chain.name}: p50 ${figure.p50.toFixed(3)} ms, p99 ${figure.p99.toFixed(3)} ms over ${l.length} round trips`);
        return figure;
      } finally {
        closeFlows(pairs);
      }
    }),
  );
  const name = '10 tunnel rr';
  const tunnel = results.get('tunnel')!;
  const node = results.get('node×3')!;
  const rows: Row[] = [
    {
      test: name,
      metric: '1 KiB round trip p50',
      unit: 'ms',
      alphanet: tunnel.p50,
      baselineName: 'node×3',
      baseline: node.p50,
      comparison: 'added',
      target: `≤ +${PING_ADDED_P50_TARGET_MS} ms`,
      met: tunnel.p50 - node.p50 <= PING_ADDED_P50_TARGET_MS,
    },
    { test: name, metric: '1 KiB round trip p99', unit: 'ms', alphanet: tunnel.p99, baselineName: 'node×3', baseline: node.p99, comparison: 'added', target: '', met: undefined },
  ];
  const socat = results.get('socat×3');
  if (socat) {
    rows.push({ test: name, metric: '1 KiB round trip p50', unit: 'ms', alphanet: tunnel.p50, baselineName: 'socat×3', baseline: socat.p50, comparison: 'added', target: '', met: undefined });
  }
  return { name, rows, details: { messageBytes: PING_BYTES, durationMs, figures: Object.fromEntries(results) } };
}
