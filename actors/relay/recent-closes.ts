/** The ring of recent closes that status() shows: the last clients and pairs to go, and why. */

/** Recent closes kept for status(). */
export const RECENT_CLOSES_LIMIT = 100;

/** One entry of the recent-closes ring. */
export interface RecentClose {
  kind: 'client' | 'pair';
  id: number;
  /** Client: "realIp → virtualIp"; pair: "a ↔ b". */
  label: string;
  reason: string;
  at: number;
  durationMs: number;
  /** Client: bytes in / out; pair: bytes a→b / b→a. */
  bytes: [number, number];
}

/** The last RECENT_CLOSES_LIMIT closes, oldest first. */
export class RecentCloses {
  readonly #entries: RecentClose[] = [];

  /** Adds a close, dropping the oldest once the ring is full. */
  remember(entry: RecentClose): void {
    if (this.#entries.length >= RECENT_CLOSES_LIMIT) this.#entries.shift();
    this.#entries.push(entry);
  }

  /** A copy, oldest first. */
  list(): RecentClose[] {
    return [...this.#entries];
  }
}
