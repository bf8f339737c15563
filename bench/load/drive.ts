/**
 * Load patterns run over any Transport: bulk transfer and paced small messages. Every byte
 * received is compared with what was sent, so a figure is only reported for a run that
 * delivered the data intact.
 */
import { randomBytes } from 'node:crypto';
import { AlphanetError } from '../../protocol/errors.ts';
import { KIB } from '../lib/stats.ts';
import type { Pair, StreamEnd } from './transports.ts';

/** Length of the repeating byte pattern every flow sends; write sizes must divide it. */
export const PATTERN_BYTES = 64 * KIB;
/** How often the paced sender wakes up to send what is due. */
const PACE_TICK_MS = 1;

/** Received bytes differ from the bytes sent, or a flow stalled past its deadline. */
export class BenchIntegrityError extends AlphanetError {
  constructor(code: 'ERR_BENCH_CORRUPT' | 'ERR_BENCH_STALLED', message: string) {
    super(code, message);
  }
}

/** The pattern, fixed per process; random so a relay that mixed up flows would be caught. */
export function makePattern(): Buffer {
  return randomBytes(PATTERN_BYTES);
}

/** True when `chunk` equals the pattern from stream offset `position` on. */
export function matchesPattern(pattern: Buffer, chunk: Buffer, position: number): boolean {
  let offset = 0;
  while (offset < chunk.length) {
    const p = (position + offset) % PATTERN_BYTES;
    const n = Math.min(PATTERN_BYTES - p, chunk.length - offset);
    if (pattern.compare(chunk, offset, offset + n, p, p + n) !== 0) return false;
    offset += n;
  }
  return true;
}

/** Checks every chunk arriving at `end` and resolves when `totalBytes` have arrived intact. */
export function receiveChecked(end: StreamEnd, pattern: Buffer, totalBytes: number, label: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let position = 0;
    end.setOnData((chunk) => {
      if (!matchesPattern(pattern, chunk, position)) {
        reject(new BenchIntegrityError('ERR_BENCH_CORRUPT', `${label}: bytes at offset ${position} differ from those sent`));
        end.setOnData(() => {});
        return;
      }
      position += chunk.length;
      if (position > totalBytes) {
        reject(new BenchIntegrityError('ERR_BENCH_CORRUPT', `${label}: ${position} bytes arrived, ${totalBytes} were sent`));
      } else if (position === totalBytes) resolve();
    });
  });
}

/** Writes `totalBytes` of the pattern in `writeBytes` writes, honouring backpressure. */
export function sendPattern(end: StreamEnd, pattern: Buffer, totalBytes: number, writeBytes: number): void {
  if (PATTERN_BYTES % writeBytes !== 0) throw new RangeError(`write size ${writeBytes} must divide ${PATTERN_BYTES}`);
  let sent = 0;
  const pump = (): void => {
    while (sent < totalBytes) {
      const at = sent % PATTERN_BYTES;
      const n = Math.min(writeBytes, totalBytes - sent);
      sent += n;
      if (!end.write(n === PATTERN_BYTES ? pattern : pattern.subarray(at, at + n))) return;
    }
  };
  end.setOnDrain(pump);
  pump();
}

/** Rejects after `ms` unless `work` settles first; keeps every load loop bounded in time. */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchIntegrityError('ERR_BENCH_STALLED', `${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Result of moving bytes over a set of flows. */
export interface TransferResult {
  bytes: number;
  seconds: number;
}

/**
 * Sends `bytesPerFlow` from a to b on every pair at once and times until the last byte has
 * arrived and been checked.
 */
export async function bulkTransfer(
  pairs: Pair[],
  pattern: Buffer,
  bytesPerFlow: number,
  writeBytes: number,
  deadlineMs: number,
): Promise<TransferResult> {
  const start = process.hrtime.bigint();
  const done = pairs.map((pair, i) => receiveChecked(pair.b, pattern, bytesPerFlow, `flow ${i}`));
  for (const pair of pairs) sendPattern(pair.a, pattern, bytesPerFlow, writeBytes);
  await withDeadline(Promise.all(done), deadlineMs, `bulk transfer over ${pairs.length} flows`);
  return { bytes: bytesPerFlow * pairs.length, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

export interface PacedOptions {
  messageBytes: number;
  messagesPerSecond: number;
  durationMs: number;
  /** Samples from the first part of the run are dropped (connections warming up). */
  warmupMs: number;
  deadlineMs: number;
}

export interface PacedResult {
  sent: number;
  latenciesMs: Float64Array;
}

/**
 * Sends fixed-size messages at a fixed total rate, round-robin over the pairs (open loop: the
 * schedule does not wait for the network), and records each message's one-way latency from
 * the moment it was written to the moment its last byte arrived.
 */
export async function pacedMessages(pairs: Pair[], pattern: Buffer, options: PacedOptions): Promise<PacedResult> {
  const { messageBytes, messagesPerSecond, durationMs, warmupMs } = options;
  if (PATTERN_BYTES % messageBytes !== 0) throw new RangeError(`message size ${messageBytes} must divide ${PATTERN_BYTES}`);
  const total = Math.floor((messagesPerSecond * durationMs) / 1000);
  if (total === 0) return { sent: 0, latenciesMs: new Float64Array(0) };
  const perFlow = pairs.map(() => ({ sentAt: [] as number[], sent: 0, arrived: 0, position: 0 }));
  const latencies = new Float64Array(total);
  let samples = 0;
  let arrivedTotal = 0;
  const start = performance.now();
  let allArrived!: () => void;
  let failed!: (error: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    allArrived = resolve;
    failed = reject;
  });
  pairs.forEach((pair, i) => {
    const flow = perFlow[i];
    pair.b.setOnData((chunk) => {
      if (!matchesPattern(pattern, chunk, flow.position)) {
        failed(new BenchIntegrityError('ERR_BENCH_CORRUPT', `flow ${i}: bytes at offset ${flow.position} differ from those sent`));
        return;
      }
      flow.position += chunk.length;
      const now = performance.now();
      const complete = Math.floor(flow.position / messageBytes);
      while (flow.arrived < complete) {
        const sentAt = flow.sentAt[flow.arrived++];
        if (sentAt - start >= warmupMs) latencies[samples++] = now - sentAt;
        arrivedTotal++;
      }
      if (arrivedTotal === total) allArrived();
    });
    pair.a.setOnDrain(() => {});
  });
  let sent = 0;
  let next = 0;
  const timer = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - start) * messagesPerSecond) / 1000));
    while (sent < due) {
      const flow = perFlow[next];
      const at = (flow.sent * messageBytes) % PATTERN_BYTES;
      flow.sentAt.push(performance.now());
      flow.sent++;
      // A paced sender does not stop on backpressure: the transport queues, and the queueing
      // shows up as latency, which is what this measures.
      pairs[next].a.write(pattern.subarray(at, at + messageBytes));
      next = (next + 1) % pairs.length;
      sent++;
    }
    if (sent === total) clearInterval(timer);
  }, PACE_TICK_MS);
  try {
    await withDeadline(finished, options.deadlineMs, `${total} paced messages`);
  } finally {
    clearInterval(timer);
  }
  return { sent: total, latenciesMs: latencies.subarray(0, samples) };
}
