/**
 * Repeated timed transfers with the CPU every process spent on them, for the user-path tests
 * (issue 10): CPU seconds per GB moved, per process, is far steadier than MB/s on a shared
 * machine (docs/BENCHMARKS.md, Noise).
 */
import type { ServerChild } from '../lib/child.ts';
import { MB } from '../lib/stats.ts';
import type { TransferResult } from '../load/drive.ts';
import { median, type BenchContext } from './context.ts';

/** A process whose CPU is read before and after each run. */
export interface Measured {
  name: string;
  child: Pick<ServerChild, 'cpuSeconds'>;
}

/** What {@link timedRuns} found. */
export interface RunFigures {
  /** Median MB/s. */
  mbps: number;
  runsMBps: number[];
  /** CPU seconds per GB moved, by process ("bench" is this process: sources, sinks, in-process clients). */
  cpuSecondsPerGb: Record<string, number>;
  /** Share of one core, by process, over the measured runs. */
  cpuShare: Record<string, number>;
}

/**
 * Runs `transfer` `runs` times, reading the CPU of this process and of `processes` around each
 * run, logs one line like the relay tests' (`  label: MB/s…; CPU: …`) and returns the figures.
 */
export async function timedRuns(
  context: BenchContext,
  label: string,
  processes: readonly Measured[],
  transfer: () => Promise<TransferResult>,
): Promise<RunFigures> {
  const runsMBps: number[] = [];
  const busy = new Map<string, number>(processes.map((p) => [p.name, 0]));
  let wallSeconds = 0;
  let bytes = 0;
  const ownBefore = process.cpuUsage();
  for (let i = 0; i < context.sizes.runs; i++) {
    const before = await Promise.all(processes.map((p) => p.child.cpuSeconds()));
    const result = await transfer();
    const after = await Promise.all(processes.map((p) => p.child.cpuSeconds()));
    processes.forEach((p, j) => busy.set(p.name, busy.get(p.name)! + after[j] - before[j]));
    wallSeconds += result.seconds;
    bytes += result.bytes;
    runsMBps.push(result.bytes / MB / result.seconds);
  }
  const own = process.cpuUsage(ownBefore);
  busy.set('bench', (own.user + own.system) / 1e6);
  const gb = bytes / 1e9;
  const cpuSecondsPerGb: Record<string, number> = {};
  const cpuShare: Record<string, number> = {};
  const parts: string[] = [];
  for (const [name, seconds] of [['bench', busy.get('bench')!] as const, ...processes.map((p) => [p.name, busy.get(p.name)!] as const)]) {
    cpuSecondsPerGb[name] = seconds / gb;
    cpuShare[name] = seconds / wallSeconds;
    parts.push(`${name} ${(100 * cpuShare[name]).toFixed(0)}% (${cpuSecondsPerGb[name].toFixed(2)} CPU-s/GB)`);
  }
  context.log(`  ${label}: ${runsMBps.map((r) => r.toFixed(0)).join(', ')} MB/s; CPU: ${parts.join(', ')} of a core`);
  return { mbps: median(runsMBps), runsMBps, cpuSecondsPerGb, cpuShare };
}
