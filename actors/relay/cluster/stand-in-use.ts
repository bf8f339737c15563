/**
 * Which stand-ins (ghost.ts) are in use, so idle ones can be closed (docs/CLUSTER.md "Known
 * limits"): a stand-in holds a client slot and ports on its relay, and one is made for every
 * remote host a client of this relay ever asked for. A stand-in is idle when it has no pair, no
 * request is under way through it, and it was last used `idleMs` ago; the next request for its
 * host makes a new one.
 */
import type { Ghost } from './ghost.ts';

/**
 * A stand-in with no pair and no request under way for this long is closed. Well above the
 * relay's 10 s request timeout, so no answer is ever waited for through a closed stand-in.
 */
export const DEFAULT_STAND_IN_IDLE_MS = 60_000;

interface Use {
  /** Requests under way through it. */
  busy: number;
  /** When it was last used (a request began or ended, a pair ended). */
  lastUsed: number;
}

export class StandInUse {
  readonly #use = new Map<Ghost, Use>();
  readonly #idleMs: number;
  readonly #now: () => number;

  /**
   * @param idleMs @default DEFAULT_STAND_IN_IDLE_MS (60 s)
   * @param now the clock, in ms @default performance.now
   */
  constructor(idleMs = DEFAULT_STAND_IN_IDLE_MS, now: () => number = () => performance.now()) {
    this.#idleMs = idleMs;
    this.#now = now;
  }

  /** A new stand-in, just used. */
  add(ghost: Ghost): void {
    this.#use.set(ghost, { busy: 0, lastUsed: this.#now() });
  }

  /** Forgets a stand-in; false if it was not known (already forgotten). */
  remove(ghost: Ghost): boolean {
    return this.#use.delete(ghost);
  }

  /** A request begins (+1) or ends (−1) through `ghost`, or (0) something else used it. */
  using(ghost: Ghost, delta: number): void {
    const use = this.#use.get(ghost);
    if (use === undefined) return;
    use.busy += delta;
    use.lastUsed = this.#now();
  }

  /** True while a request is under way through `ghost`. */
  busy(ghost: Ghost): boolean {
    return (this.#use.get(ghost)?.busy ?? 0) > 0;
  }

  /** Stand-ins idle long enough to close; `hasPairs` says whether one still carries a pair. */
  idle(hasPairs: (ghost: Ghost) => boolean): Ghost[] {
    const now = this.#now();
    return [...this.#use].filter(([ghost, use]) => use.busy === 0 && now - use.lastUsed >= this.#idleMs && !hasPairs(ghost)).map(([ghost]) => ghost);
  }
}
