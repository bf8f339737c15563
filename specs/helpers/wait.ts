/**
 * Waiting on a condition that no event announces (a relay counter, a table size), with a limit
 * that fails the spec naming what it waited for instead of hanging until tap's own timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a spec waits for a condition before failing. */
export const WAIT_FOR_MS = 15_000;

/** Resolves once `check()` is true; checks every few ms; rejects after `timeoutMs` naming `what`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = WAIT_FOR_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * `promise`, or a rejection naming `what` after `timeoutMs`: a wait on a stream or a log line
 * fails the spec with what never came, instead of hanging until tap's per-file timeout.
 */
export function within<T>(what: string, promise: Promise<T>, timeoutMs = WAIT_FOR_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
