/**
 * Test 7 of issue 6: one destination stops reading while other flows run. Their aggregate
 * throughput is compared with the same flows in the same relay without the frozen one, and the
 * relay's RSS is sampled throughout to show it stays bounded (docs/PROTOCOL.md §7: at most one
 * window per direction per pair).
 */
import type { ScenarioResult } from '../lib/report.ts';
import { MB, MIB } from '../lib/stats.ts';
import { bulkTransfer, PATTERN_BYTES, sendPattern } from '../load/drive.ts';
import { median, PHASE_DEADLINE_MS, withPairs, type BenchContext } from './context.ts';
import { BULK_WRITE_BYTES } from './throughput.ts';

/** Throughput the other flows may lose to a frozen receiver (issue 6). */
export const FROZEN_MAX_LOSS = 0.05;
/** How often the relay's RSS is read during the frozen run. */
const RSS_SAMPLE_MS = 50;
/** Bytes the frozen flow's sender tries to push: far more than any window or buffer. */
const FROZEN_SEND_BYTES = 64 * MIB;

export async function frozenScenario(context: BenchContext): Promise<ScenarioResult> {
  const flows = context.sizes.frozenFlows;
  const bytesPerFlow = Math.max(PATTERN_BYTES, Math.floor(context.sizes.bulkBytes / flows / PATTERN_BYTES) * PATTERN_BYTES);
  const figures = await withPairs(context, 'relay', flows + 1, async (pairs, transport) => {
    const frozen = pairs[flows];
    const others = pairs.slice(0, flows);
    await bulkTransfer(others, context.pattern, Math.max(PATTERN_BYTES, bytesPerFlow / 8), BULK_WRITE_BYTES, PHASE_DEADLINE_MS);
    const rssIdle = (await transport.middleRss())!;
    const free: number[] = [];
    const withFrozen: number[] = [];
    let rssMax = rssIdle;
    const sampler = setInterval(() => {
      void transport.middleRss().then((rss) => (rssMax = Math.max(rssMax, rss ?? 0)), () => {});
    }, RSS_SAMPLE_MS);
    try {
      // Alternate runs so drift in machine load hits both sides alike.
      for (let i = 0; i < context.sizes.runs; i++) {
        const a = await bulkTransfer(others, context.pattern, bytesPerFlow, BULK_WRITE_BYTES, PHASE_DEADLINE_MS);
        free.push(a.bytes / MB / a.seconds);
        if (i === 0) {
          frozen.b.freeze();
          sendPattern(frozen.a, context.pattern, FROZEN_SEND_BYTES, BULK_WRITE_BYTES);
        }
        const b = await bulkTransfer(others, context.pattern, bytesPerFlow, BULK_WRITE_BYTES, PHASE_DEADLINE_MS);
        withFrozen.push(b.bytes / MB / b.seconds);
      }
    } finally {
      clearInterval(sampler);
    }
    const rssEnd = (await transport.middleRss())!;
    context.log(`  free ${free.map((r) => r.toFixed(0)).join(', ')} MB/s; with frozen ${withFrozen.map((r) => r.toFixed(0)).join(', ')} MB/s; relay RSS ${(rssIdle / MIB).toFixed(0)} → max ${(rssMax / MIB).toFixed(0)} MiB`);
    return { free: median(free), withFrozen: median(withFrozen), rssIdle, rssMax, rssEnd, freeRuns: free, frozenRuns: withFrozen };
  });
  const name = '7 frozen receiver';
  return {
    name,
    rows: [
      {
        test: name,
        metric: `throughput of ${flows} flows beside a frozen one`,
        unit: 'MB/s',
        alphanet: figures.withFrozen,
        baselineName: 'no frozen',
        baseline: figures.free,
        comparison: 'ratio',
        target: `≥ ${(1 - FROZEN_MAX_LOSS).toFixed(2)}×`,
        met: figures.withFrozen >= (1 - FROZEN_MAX_LOSS) * figures.free,
      },
      {
        test: name,
        metric: 'relay RSS growth while frozen (max)',
        unit: 'MiB',
        alphanet: (figures.rssMax - figures.rssIdle) / MIB,
        baselineName: 'MiB idle RSS',
        baseline: figures.rssIdle / MIB,
        comparison: 'ratio',
        target: 'bounded',
        met: undefined,
      },
    ],
    details: { flows, bytesPerFlow, frozenSendBytes: FROZEN_SEND_BYTES, ...figures },
  };
}
