/**
 * The client's own timers (keepalive silence, request and connect timeouts) on the clock given
 * to connect(), so a spec can drive them with xstate's `SimulatedClock` instead of waiting.
 */

/**
 * xstate's clock shape (`createActor(logic, { clock })`; xstate does not export the type):
 * `SimulatedClock` from xstate is one, and so is an object over the global timers.
 */
export interface Clock {
  setTimeout(fn: (...args: any[]) => void, timeout: number): unknown;
  clearTimeout(id: any): void;
}

/** A one-shot timer that can be re-armed. Node's own `Timeout` is one. */
export interface ClientTimer {
  /** Starts the full delay again (a keepalive timer re-arms on every frame). */
  refresh(): unknown;
  /** Cancels it; it never fires. */
  close(): unknown;
}

/** The host's own timers, for real time where they are plain numbers (a browser). */
const GLOBAL_TIMERS: Clock = {
  setTimeout: (fn, timeout) => setTimeout(fn, timeout),
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * Calls `fire` after `ms` on `clock`. Real time (no clock) in Node gives Node's timer itself:
 * refresh() re-arms it without allocating, which the keepalive does per frame received; `unref`
 * lets the process exit while only this timer waits. A given clock, or a browser's numeric
 * timers, re-arm by clearing and setting.
 */
export function startTimer(clock: Clock | undefined, ms: number, fire: () => void, options: { unref?: boolean } = {}): ClientTimer {
  if (clock === undefined) {
    const timer = setTimeout(fire, ms) as unknown as ClientTimer & { unref?: () => unknown };
    if (typeof timer === 'object' && typeof timer.refresh === 'function') {
      if (options.unref) timer.unref?.();
      return timer;
    }
    clearTimeout(timer as unknown as number);
    clock = GLOBAL_TIMERS;
  }
  let id: unknown = clock.setTimeout(fire, ms);
  return {
    refresh() {
      clock.clearTimeout(id);
      id = clock.setTimeout(fire, ms);
    },
    close() {
      clock.clearTimeout(id);
    },
  };
}
