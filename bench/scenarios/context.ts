/**
 * What every scenario gets: sizes from the command line, the byte pattern, relay options and a
 * progress logger. Sizes are options so the smoke spec can run everything tiny.
 */
import type { Pair, RelayStartOptions, RelayTransport, Transport, TransportKind } from '../load/transports.ts';
import { AddressBlock, sourceAddress } from '../lib/addresses.ts';
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
  /** Bytes through one VirtualConnection in the API test, and through the tunnel per run. */
  userPathBytes: number;
  /** Concurrent connections in the many-connection tunnel test. */
  tunnelFlows: number;
  /** Bytes per run through the long link. */
  linkBytes: number;
  /** One-way delay of the long link, in ms. */
  linkDelayMs: number;
  /** Rate of each direction of the long link, in MB/s. */
  linkRateMBps: number;
  /** Datagrams per second offered in the UDP test. */
  udpRate: number;
  /** Payload of each datagram in the UDP test, in bytes (at least 8). */
  udpPayloadBytes: number;
}

export interface BenchContext {
  sizes: BenchSizes;
  pattern: Buffer;
  relay: RelayStartOptions;
  /** Progress for people, on stderr. */
  log(message: string): void;
  /**
   * Transports kept for the whole run and shared by the flow scenarios, so a run pays for each
   * server process start once; runBench closes them at the end.
   */
  shared: Map<TransportKind, Transport>;
  /**
   * Next unused source address of the flow block: every set of pairs gets real IPs of its own,
   * so a relay still cleaning up one scenario's clients never sees the next one's as a clash.
   */
  nextFlowAddress: number;
  /** Next unused source address of the user-path block (tunnel processes, API clients). */
  nextUserAddress?: number;
}

/** A fresh real source address for a user-path client or tunnel process. */
export function userAddress(context: BenchContext): string {
  const n = context.nextUserAddress ?? 0;
  context.nextUserAddress = n + 1;
  return sourceAddress(AddressBlock.userPath, n);
}

/** The relay the flow scenarios share (started on first use), with its raw-client transport. */
export async function sharedRelay(context: BenchContext): Promise<RelayTransport> {
  let transport = context.shared.get('relay');
  if (transport === undefined) {
    transport = await startTransport('relay', context.relay);
    context.shared.set('relay', transport);
  }
  return transport as RelayTransport;
}

/** Upper bound for any one load phase: every loop stops by itself. */
export const PHASE_DEADLINE_MS = 120_000;

/**
 * Opens `flows` pairs on the shared transport of `kind` (starting it on first use), runs `body`,
 * and always releases the pairs again.
 */
export async function withPairs<T>(
  context: BenchContext,
  kind: TransportKind,
  flows: number,
  body: (pairs: Pair[], transport: Transport) => Promise<T>,
): Promise<T> {
  let transport = context.shared.get(kind);
  if (transport === undefined) {
    transport = await startTransport(kind, context.relay);
    context.shared.set(kind, transport);
  }
  const pairs = await transport.openPairs(flows, AddressBlock.flows, context.nextFlowAddress);
  context.nextFlowAddress += 2 * flows;
  try {
    return await body(pairs, transport);
  } finally {
    await transport.releasePairs(pairs);
  }
}

/** Closes the shared transports. */
export async function closeShared(context: BenchContext): Promise<void> {
  const transports = [...context.shared.values()];
  context.shared.clear();
  await Promise.all(transports.map((t) => t.close()));
}

/** The median of a few numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
