/**
 * The relay-wide budget for flow-control credit above the initial windows (docs/PROTOCOL.md §7).
 *
 * Receivers grow the window they grant up to MAX_WINDOW_BYTES per direction when the sender is
 * window-limited (a long link). A window is what a sender may put in flight towards a receiver
 * that might stop reading, and all of that may end up queued at the relay or in its sockets: so
 * the credit above INITIAL_WINDOW_BYTES of all pairs together is capped. Credit up to the initial
 * window always passes. A grant that does not fit is not refused (the receiver did nothing
 * wrong): the relay forwards what fits and holds the rest for that direction, and hands it on
 * (as a WindowUpdate of its own) as soon as data passing on that direction makes room. A sender
 * thus never waits on credit held here while its credit is below the initial window, so no
 * pair can stall on the budget.
 */
import { INITIAL_WINDOW_BYTES } from '../../protocol/constants.ts';

/** Credit above the initial windows the relay lets all pairs hold at once: 256 MiB. */
export const DEFAULT_WINDOW_BUDGET_BYTES = 256 * 1024 * 1024;

/** Which direction of a pair: 0 = a → b, 1 = b → a. */
export type Direction = 0 | 1;

export class WindowBudget {
  readonly limitBytes: number;
  #used = 0;
  /** Credit granted by receivers and not yet passed on, by pairId * 2 + direction. */
  readonly #held = new Map<number, number>();

  constructor(limitBytes = DEFAULT_WINDOW_BUDGET_BYTES) {
    this.limitBytes = limitBytes;
  }

  /** Credit above the initial windows that senders hold now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** Credit held back for `direction` of pair `pairId`. */
  heldBytes(pairId: number, direction: Direction): number {
    return this.#held.get(pairId * 2 + direction) ?? 0;
  }

  /**
   * A receiver grants `bytes` on a direction whose sender holds `credit`: returns how much to
   * pass on now (added to the credit by the caller); the rest is held.
   */
  grant(pairId: number, direction: Direction, credit: number, bytes: number): number {
    const now = this.#fit(credit, bytes);
    if (now < bytes) {
      const key = pairId * 2 + direction;
      this.#held.set(key, (this.#held.get(key) ?? 0) + bytes - now);
    }
    return now;
  }

  /**
   * `payload` bytes passed on a direction whose credit was `before` (and is `before - payload`
   * now): frees their share of the budget, and returns held credit to pass on now (the caller
   * adds it to the credit and sends it to the sender).
   */
  spent(pairId: number, direction: Direction, before: number, payload: number): number {
    const after = before - payload;
    if (before > INITIAL_WINDOW_BYTES) this.#used -= before - Math.max(after, INITIAL_WINDOW_BYTES);
    if (this.#held.size === 0) return 0;
    const key = pairId * 2 + direction;
    const held = this.#held.get(key);
    if (held === undefined) return 0;
    const now = this.#fit(after, held);
    if (now === held) this.#held.delete(key);
    else this.#held.set(key, held - now);
    return now;
  }

  /** The pair is gone: its credit above the initial windows goes back, and nothing is held for it. */
  forget(pairId: number, creditAToB: number, creditBToA: number): void {
    this.#used -= Math.max(0, creditAToB - INITIAL_WINDOW_BYTES) + Math.max(0, creditBToA - INITIAL_WINDOW_BYTES);
    this.#held.delete(pairId * 2);
    this.#held.delete(pairId * 2 + 1);
  }

  /** How much of `bytes` on top of `credit` fits: up to the initial window freely, above it from the budget. */
  #fit(credit: number, bytes: number): number {
    const free = Math.min(bytes, Math.max(0, INITIAL_WINDOW_BYTES - credit));
    const extra = Math.min(bytes - free, Math.max(0, this.limitBytes - this.#used));
    this.#used += extra;
    return free + extra;
  }
}
