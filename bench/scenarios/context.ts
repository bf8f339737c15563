/**
 * What every scenario gets: sizes from the command line, the byte pattern, relay options and a
 * progress logger. Sizes are options so the smoke spec can run everything tiny.
 */
import type { RelayStartOptions, Transport, TransportKind } from '../load/transports.ts';
import { startTransport } from '../load/transports.ts';

export interface BenchSizes {
  /** Bytes moved by the bulk and aggregate tests (a multiple of 64 KiB). */
  bulkBytes: number;
  /** Measured repetitions of each transfer; the median is reported. */
  runs: number;
  /** Length of the paced and idle phases, in milliseconds. */
  durationMs: number;
  /** Concurrent flows in the aggregate and small-message tests. */
  flows: number;
  /** Small messages per second over all flows. */
  messagesPerSecond: number;
  /** Concurrent virtual connects in the handshake test. */
  concurrentConnects: number;
  /** Total virtual connects in the handshake test. */
  totalConnects: number;
  /** Idle clients in the scale test. */
  idleClients: number;
  /** Active socket connections in the scale test. */
  activeConnections: number;
  /** Entries in the store before the address-assignment test. */
  prefillEntries: number;
  /** New clients in the address-assignment test. */
  newClients: number;
  /** Entries for the store load-time measurement. */
  loadEntries: number;
  /** Flows beside the frozen one. */
  frozenFlows: number;
}

export interface BenchContext {
  sizes: BenchSizes;
  pattern: Buffer;
  relay: RelayStartOptions;
  /** Progress for people, on stderr. */
  log(message: string): void;
}

/** Upper bound for any one load phase: every loop stops by itself. */
export const PHASE_DEADLINE_MS = 120_000;

/** Starts a transport, runs `body`, and always closes it. */
export async function withTransport<T>(
  context: BenchContext,
  kind: TransportKind,
  body: (transport: Transport) => Promise<T>,
): Promise<T> {
  const transport = await startTransport(kind, context.relay);
  try {
    return await body(transport);
  } finally {
    await transport.close();
  }
}

/** The median of a few numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
