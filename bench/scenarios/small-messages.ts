/**
 * Test 3 of issue 6: 1 KiB messages at a fixed total rate over many connections; the latency the
 * relay adds over the plain proxy, at p50 and p99.
 */
import type { ScenarioResult } from '../lib/report.ts';
import { KIB, percentile } from '../lib/stats.ts';
import { pacedMessages } from '../load/drive.ts';
import type { TransportKind } from '../load/transports.ts';
import { PHASE_DEADLINE_MS, withPairs, type BenchContext } from './context.ts';

/** Message size (issue 6). */
export const SMALL_MESSAGE_BYTES = KIB;
/** Added latency targets over the proxy (issue 6), in milliseconds. */
export const ADDED_P50_TARGET_MS = 1;
export const ADDED_P99_TARGET_MS = 5;
/** Part of the run whose samples are dropped. */
const WARMUP_SHARE = 0.2;

const KINDS: TransportKind[] = ['direct', 'proxy', 'relay'];

export async function smallMessagesScenario(context: BenchContext): Promise<ScenarioResult> {
  const { flows, messagesPerSecond, durationMs } = context.sizes;
  const figures: Record<string, { p50: number; p99: number; max: number; samples: number }> = {};
  for (const kind of KINDS) {
    figures[kind] = await withPairs(context, kind, flows, async (pairs) => {
      const result = await pacedMessages(pairs, context.pattern, {
        messageBytes: SMALL_MESSAGE_BYTES,
        messagesPerSecond,
        durationMs,
        warmupMs: durationMs * WARMUP_SHARE,
        deadlineMs: durationMs + PHASE_DEADLINE_MS,
      });
      const l = result.latenciesMs;
      const figure = { p50: percentile(l, 0.5), p99: percentile(l, 0.99), max: percentile(l, 1), samples: l.length };
      context.log(`  ${kind}: p50 ${figure.p50.toFixed(3)} ms, p99 ${figure.p99.toFixed(3)} ms over ${l.length} messages`);
      return figure;
    });
  }
  const name = '3 small msgs';
  const relay = figures.relay;
  const proxy = figures.proxy;
  return {
    name,
    rows: [
      {
        test: name,
        metric: `latency p50, ${messagesPerSecond}/s × 1 KiB`,
        unit: 'ms',
        alphanet: relay.p50,
        baselineName: 'proxy',
        baseline: proxy.p50,
        comparison: 'added',
        target: `≤ +${ADDED_P50_TARGET_MS} ms`,
        met: relay.p50 - proxy.p50 <= ADDED_P50_TARGET_MS,
      },
      {
        test: name,
        metric: `latency p99, ${messagesPerSecond}/s × 1 KiB`,
        unit: 'ms',
        alphanet: relay.p99,
        baselineName: 'proxy',
        baseline: proxy.p99,
        comparison: 'added',
        target: `≤ +${ADDED_P99_TARGET_MS} ms`,
        met: relay.p99 - proxy.p99 <= ADDED_P99_TARGET_MS,
      },
    ],
    details: { flows, messagesPerSecond, durationMs, messageBytes: SMALL_MESSAGE_BYTES, latencyMs: figures },
  };
}
