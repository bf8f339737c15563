/**
 * Tests 1 and 2 of issue 6: bulk throughput over one virtual socket connection with 64 KiB
 * writes, and aggregate throughput over many concurrent connections, each against direct TCP
 * and the plain pipe() proxy in the same run.
 */
import type { ScenarioResult } from '../lib/report.ts';
import { KIB, MB } from '../lib/stats.ts';
import { bulkTransfer, PATTERN_BYTES } from '../load/drive.ts';
import type { TransportKind } from '../load/transports.ts';
import { median, PHASE_DEADLINE_MS, withPairs, type BenchContext } from './context.ts';

/** Write size of the bulk tests (issue 6). */
export const BULK_WRITE_BYTES = 64 * KIB;
/** Share of the measured size sent once first to warm up JIT and buffers. */
const WARMUP_FRACTION = 0.125;
/** The proxy is the bar: AlphaNET must reach this share of it (issue 6). */
export const THROUGHPUT_TARGET_RATIO = 0.9;

const KINDS: TransportKind[] = ['direct', 'proxy', 'relay'];

function roundToPattern(bytes: number): number {
  return Math.max(PATTERN_BYTES, Math.floor(bytes / PATTERN_BYTES) * PATTERN_BYTES);
}

interface Measured {
  mbps: number;
  runs: number[];
  bytes: number;
  /** Share of one core the process in the middle used during the measured runs. */
  middleCpuShare: number | undefined;
  /** Share of one core this process (the load clients at both ends) used. */
  loadCpuShare: number;
}

async function measure(context: BenchContext, kind: TransportKind, flows: number): Promise<Measured> {
  const bytesPerFlow = roundToPattern(context.sizes.bulkBytes / flows);
  return withPairs(context, kind, flows, async (pairs, transport) => {
    await bulkTransfer(pairs, context.pattern, roundToPattern(bytesPerFlow * WARMUP_FRACTION), BULK_WRITE_BYTES, PHASE_DEADLINE_MS);
    const runs: number[] = [];
    let busySeconds = 0;
    let wallSeconds = 0;
    const ownBefore = process.cpuUsage();
    for (let i = 0; i < context.sizes.runs; i++) {
      const cpuBefore = await transport.middleCpuSeconds();
      const result = await bulkTransfer(pairs, context.pattern, bytesPerFlow, BULK_WRITE_BYTES, PHASE_DEADLINE_MS);
      const cpuAfter = await transport.middleCpuSeconds();
      busySeconds += (cpuAfter ?? 0) - (cpuBefore ?? 0);
      wallSeconds += result.seconds;
      runs.push(result.bytes / MB / result.seconds);
    }
    const own = process.cpuUsage(ownBefore);
    const loadSeconds = (own.user + own.system) / 1e6;
    const loadCpuShare = loadSeconds / wallSeconds;
    const middleCpuShare = kind === 'direct' ? undefined : busySeconds / wallSeconds;
    // CPU seconds per GB moved is far steadier than MB/s on a shared machine (docs/BENCHMARKS.md).
    const gb = (bytesPerFlow * flows * context.sizes.runs) / 1e9;
    const perGb = (seconds: number): string => `${(seconds / gb).toFixed(2)} CPU-s/GB`;
    const cpu = `; CPU: load clients ${(100 * loadCpuShare).toFixed(0)}% (${perGb(loadSeconds)})${middleCpuShare === undefined ? '' : `, ${kind} ${(100 * middleCpuShare).toFixed(0)}% (${perGb(busySeconds)})`} of a core`;
    context.log(`  ${kind}: ${runs.map((r) => r.toFixed(0)).join(', ')} MB/s${cpu}`);
    return { mbps: median(runs), runs, bytes: bytesPerFlow * flows, middleCpuShare, loadCpuShare };
  });
}

async function throughput(context: BenchContext, name: string, flows: number): Promise<ScenarioResult> {
  const results: Partial<Record<TransportKind, Awaited<ReturnType<typeof measure>>>> = {};
  for (const kind of KINDS) results[kind] = await measure(context, kind, flows);
  const relay = results.relay!.mbps;
  const proxy = results.proxy!.mbps;
  const direct = results.direct!.mbps;
  return {
    name,
    rows: [
      {
        test: name,
        metric: `throughput, ${flows} flow${flows === 1 ? '' : 's'}`,
        unit: 'MB/s',
        alphanet: relay,
        baselineName: 'proxy',
        baseline: proxy,
        comparison: 'ratio',
        target: `≥ ${THROUGHPUT_TARGET_RATIO.toFixed(2)}× proxy`,
        met: relay >= THROUGHPUT_TARGET_RATIO * proxy,
      },
      {
        test: name,
        metric: `throughput, ${flows} flow${flows === 1 ? '' : 's'}`,
        unit: 'MB/s',
        alphanet: relay,
        baselineName: 'direct',
        baseline: direct,
        comparison: 'ratio',
        target: '',
        met: undefined,
      },
    ],
    details: { flows, bytesPerRun: results.relay!.bytes, writeBytes: BULK_WRITE_BYTES, runsMBps: { direct: results.direct!.runs, proxy: results.proxy!.runs, relay: results.relay!.runs },
      middleCpuShare: { proxy: results.proxy!.middleCpuShare, relay: results.relay!.middleCpuShare },
      loadCpuShare: { direct: results.direct!.loadCpuShare, proxy: results.proxy!.loadCpuShare, relay: results.relay!.loadCpuShare },
    },
  };
}

/** Test 1: one flow. */
export function bulkScenario(context: BenchContext): Promise<ScenarioResult> {
  return throughput(context, '1 bulk', 1);
}

/** Test 2: many concurrent flows. */
export function aggregateScenario(context: BenchContext): Promise<ScenarioResult> {
  return throughput(context, '2 aggregate', context.sizes.flows);
}
