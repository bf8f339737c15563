/**
 * Small numeric helpers for the benchmark: percentiles over recorded samples and the unit
 * conversions every table row uses.
 */

/** Bytes in a mebibyte; throughput is printed in MB/s = 10^6 bytes/s, sizes in MiB. */
export const MIB = 1024 * 1024;
/** Bytes in a kibibyte. */
export const KIB = 1024;
/** Bytes in a megabyte (decimal), the unit of throughput figures. */
export const MB = 1_000_000;

/**
 * The q-quantile (0..1) of `samples` by nearest rank. Sorts a copy, so callers may keep
 * appending. NaN for no samples.
 */
export function percentile(samples: ArrayLike<number>, q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** Seconds elapsed since `start` (a process.hrtime.bigint() reading). */
export function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Milliseconds elapsed since `start` (a process.hrtime.bigint() reading). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** A monotonic clock reading in milliseconds, for latency samples. */
export function nowMs(): number {
  return performance.now();
}

/** `value / base`, or NaN when the base is missing or zero. */
export function ratio(value: number, base: number): number {
  return base > 0 && Number.isFinite(base) && Number.isFinite(value) ? value / base : Number.NaN;
}
