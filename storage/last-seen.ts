/**
 * Last-seen times are kept per UTC day: a day number is enough to decide "unseen for 90 days",
 * and recording at most one change per entry per day keeps the write cost of a reconnect near zero.
 */

/** Milliseconds in a day. */
export const DAY_MS = 86_400_000;

/** The UTC day number (days since 1970-01-01) of a time in milliseconds. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** "2026-12-02" for a day number. */
export function formatDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}
