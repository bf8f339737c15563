/** Runs fn(0..count-1) with at most `concurrency` in flight; rejects on the first failure. */
export async function forEachLimited(count: number, concurrency: number, fn: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}
