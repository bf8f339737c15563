/** Waits for specs in specs/observe: each has a timeout and fails saying what it waited for. */
import { within as withinMs } from '../helpers/wait.ts';

/** How long a spec waits for something the relay or a page should do promptly. */
export const WAIT_MS = 10_000;

/** `promise`, or a rejection naming `what` after `ms`: specs/helpers/wait.ts's `within` with this folder's shorter default. */
export function within<T>(what: string, promise: Promise<T>, ms = WAIT_MS): Promise<T> {
  return withinMs(what, promise, ms);
}

/**
 * Resolves once `check()` holds, re-checked each time `wake` is called (a message arrived);
 * fails naming `what` after `ms`. No polling: the caller's event handler calls the wake function.
 */
export function waiter(): { wake: () => void; until: (what: string, check: () => boolean, ms?: number) => Promise<void> } {
  const pending = new Set<() => void>();
  return {
    wake: () => {
      for (const resolve of [...pending]) resolve();
    },
    until: (what, check, ms = WAIT_MS) =>
      within(
        what,
        (async () => {
          while (!check()) {
            await new Promise<void>((resolve) => {
              const done = () => {
                pending.delete(done);
                resolve();
              };
              pending.add(done);
            });
          }
        })(),
        ms,
      ),
  };
}

/** fetch() that fails naming the URL when no answer (body included) comes within `ms`. */
export async function fetchWithin(url: string, ms = WAIT_MS): Promise<Response> {
  try {
    return await fetch(url, { signal: AbortSignal.timeout(ms) });
  } catch (error) {
    throw new Error(`GET ${url}: ${(error as Error).name === 'TimeoutError' ? `no answer within ${ms} ms` : String(error)}`);
  }
}
