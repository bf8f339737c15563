/**
 * Address-store figures for docs/STORAGE.md: load time, allocations per second under a steady
 * stream of new clients, write latency, and the longest event-loop block, at a given map size.
 *
 *   node --import tsx bench/store-bench.ts [entries=100000] [seconds=3] [lanes=64]
 *
 * The existing entries are written straight into shard files (building a million through
 * findOrAllocate would take minutes and measure nothing new); everything after that goes
 * through the real store.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { DEFAULT_SHARD_COUNT, DEFAULT_SUBNET, openAddressStore, parseSubnet, type StoreWriteInfo } from '../storage/index.ts';
import { shardOf } from '../storage/sharded-store.ts';

const entries = Number(process.argv[2] ?? 100_000);
const seconds = Number(process.argv[3] ?? 3);
const lanes = Number(process.argv[4] ?? 64);

/** Real IPs of the pre-filled map: 11.x.y.z; new clients come from 12.x.y.z. */
const realIp = (prefix: number, i: number): string => `${prefix}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** Returns each shard's JSON.stringify time, sorted: the store's longest synchronous step. */
async function prefill(dbPath: string): Promise<number[]> {
  const subnet = parseSubnet(DEFAULT_SUBNET);
  const shards: Record<string, number>[] = Array.from({ length: DEFAULT_SHARD_COUNT }, () => ({}));
  for (let i = 0; i < entries; i++) {
    const ip = realIp(11, i);
    shards[shardOf(ip, DEFAULT_SHARD_COUNT)][ip] = subnet.first + i;
  }
  await mkdir(`${dbPath}.shards`, { recursive: true });
  await writeFile(dbPath, JSON.stringify({ version: 1, subnet: subnet.cidr, shards: DEFAULT_SHARD_COUNT }));
  const times: number[] = [];
  const texts = shards.map((e) => {
    const t0 = performance.now();
    const text = JSON.stringify({ entries: e });
    times.push(performance.now() - t0);
    return text;
  });
  await Promise.all(texts.map((text, i) => writeFile(path.join(`${dbPath}.shards`, `${String(i).padStart(4, '0')}.json`), text)));
  return times.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-store-bench-'));
  const dbPath = path.join(dir, 'alphanet.json');
  try {
    const shardStringifyMs = await prefill(dbPath);
    let gcMaxMs = 0;
    const gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcMaxMs = Math.max(gcMaxMs, entry.duration);
    });
    gc.observe({ entryTypes: ['gc'] });

    const loadStarted = performance.now();
    const writes: StoreWriteInfo[] = [];
    const store = await openAddressStore({ path: dbPath, onWrite: (info) => writes.push(info) });
    const loadMs = performance.now() - loadStarted;
    if (store.size !== entries) throw new Error(`loaded ${store.size} of ${entries}`);

    // Whole-map stringify: what a single lowdb database would pay on every write.
    const whole = Object.fromEntries([...store.entries()].map((e) => [e.realIp, e.virtualIp]));
    const wholeStarted = performance.now();
    JSON.stringify({ entries: whole });
    const wholeStringifyMs = performance.now() - wholeStarted;

    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const latencies: number[] = [];
    let next = 0;
    const deadline = performance.now() + seconds * 1000;
    const started = performance.now();
    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await store.findOrAllocate(realIp(12, next++));
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
    const elapsed = (performance.now() - started) / 1000;
    delay.disable();
    await store.close();

    latencies.sort((a, b) => a - b);
    const writeMs = writes.map((w) => w.durationMs).sort((a, b) => a - b);
    gc.disconnect();
    const figures = {
      entries,
      shardStringifyMs: {
        p50: +percentile(shardStringifyMs, 0.5).toFixed(2),
        p99: +percentile(shardStringifyMs, 0.99).toFixed(2),
        max: +(shardStringifyMs.at(-1) ?? 0).toFixed(2),
      },
      lanes,
      loadMs: Math.round(loadMs),
      wholeMapStringifyMs: Math.round(wholeStringifyMs),
      allocationsPerSecond: Math.round(latencies.length / elapsed),
      allocationLatencyMs: { p50: +percentile(latencies, 0.5).toFixed(1), p99: +percentile(latencies, 0.99).toFixed(1) },
      writes: writes.length,
      meanBatch: Math.round(writes.reduce((s, w) => s + w.entries, 0) / Math.max(1, writes.length)),
      meanShardsPerWrite: Math.round(writes.reduce((s, w) => s + w.shards, 0) / Math.max(1, writes.length)),
      writeMs: { p50: +percentile(writeMs, 0.5).toFixed(1), max: +(writeMs.at(-1) ?? 0).toFixed(1) },
      longestGcPauseMs: +gcMaxMs.toFixed(1),
      eventLoopDelayMs: { p99: +(delay.percentile(99) / 1e6).toFixed(1), max: +(delay.max / 1e6).toFixed(1) },
    };
    console.log(JSON.stringify(figures, null, 2));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
