/**
 * The budget for bytes of incomplete frames (docs/RELAY.md "Bounds", issue 9): per host key and
 * relay-wide. A connection whose host or the relay is over it is not read until others' bytes
 * fit again (the sweep checks the waiters).
 */
import type { RelayCounters } from './counters.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import { Tally } from './limits.ts';
import type { Connection } from './connection.ts';

/** Counts incomplete-frame bytes and judges who is over budget. */
export class ReadBudget {
  /** Incomplete-frame bytes per host key. */
  readonly perHost = new Tally();
  /** Connections not read until incomplete-frame bytes fall below budget, oldest first. */
  readonly waiters = new Set<Connection>();
  readonly #options: ResolvedRelayOptions;
  readonly #counters: RelayCounters;

  constructor(options: ResolvedRelayOptions, counters: RelayCounters) {
    this.#options = options;
    this.#counters = counters;
  }

  /**
   * Counts the connection's buffered bytes (its reader's and its transport's), or `buffered`
   * (0 when it is released), into the per-host and relay-wide totals.
   */
  count(conn: Connection, buffered = conn.bufferedBytes): void {
    const delta = buffered - conn.partialBytes;
    if (delta === 0) return;
    conn.partialBytes = buffered;
    this.#counters.partialFrameBytes += delta;
    this.perHost.add(conn.hostKey, delta);
  }

  /**
   * True when the host's incomplete-frame bytes, less `own`, exceed its budget, or when the
   * relay's exceed theirs and this host holds more than an equal share of them. The share keeps
   * hosts that filled the relay-wide budget (each under its own) from holding back, and timing
   * out, a client whose one big frame spans a few reads.
   */
  over(conn: Connection, own: number): boolean {
    const o = this.#options;
    const host = this.perHost.get(conn.hostKey) - own;
    if (host > o.maxPartialFrameBytesPerHost) return true;
    if (this.#counters.partialFrameBytes - own <= o.maxPartialFrameBytes) return false;
    return host > o.maxPartialFrameBytes / Math.max(1, this.perHost.size);
  }
}
