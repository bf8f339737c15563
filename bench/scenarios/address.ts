/**
 * Test 6 of issue 6: new clients per second with an already large store, durability as
 * shipped (the relay answers VirtualIP only once the mapping is fsynced), against the same
 * clients coming back (a lookup, no write) in the same run; and the store's load time with a
 * million entries, taken from the storage engineer's bench/store-bench.ts (not duplicated here)
 * beside a plain JSON.parse of the same map in one file.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_SHARD_COUNT, DEFAULT_SUBNET, parseSubnet } from '../../storage/index.ts';
import { shardOf } from '../../storage/sharded-store.ts';
import { AddressBlock, sourceAddress } from '../lib/addresses.ts';
import { forEachLimited } from '../lib/parallel.ts';
import type { ScenarioResult } from '../lib/report.ts';
import { withDeadline } from '../load/drive.ts';
import { RelayProcess } from '../load/transports.ts';
import { PHASE_DEADLINE_MS, type BenchContext } from './context.ts';

/** New clients per second the relay must sustain (issue 6). */
export const NEW_CLIENTS_PER_SECOND_TARGET = 2000;
/** Clients saying Hello at once. */
const HELLO_CONCURRENCY = 500;
/** How long store-bench.ts may take at a million entries. */
const STORE_BENCH_TIMEOUT_MS = 180_000;
/** store-bench.ts also measures allocations for a while; only its load time is used here. */
const STORE_BENCH_ALLOCATION_SECONDS = '0.2';

const run = promisify(execFile);

/** Real IPs of pre-filled entries: 11.x.y.z, never a load client's 127.x.y.z. */
function prefillIp(i: number): string {
  return `11.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
}

/**
 * Writes a store of `entries` mappings in the shipped file layout (docs/STORAGE.md: manifest plus
 * shard files), straight to disk: going through 100,000 fsynced allocations first would take
 * longer than the test and measure nothing new.
 */
export async function writePrefilledStore(dbPath: string, entries: number): Promise<void> {
  const subnet = parseSubnet(DEFAULT_SUBNET);
  const shards: Record<string, number>[] = Array.from({ length: DEFAULT_SHARD_COUNT }, () => ({}));
  for (let i = 0; i < entries; i++) {
    const ip = prefillIp(i);
    shards[shardOf(ip, DEFAULT_SHARD_COUNT)][ip] = subnet.first + 1 + i;
  }
  await mkdir(`${dbPath}.shards`, { recursive: true });
  await writeFile(dbPath, JSON.stringify({ version: 1, subnet: subnet.cidr, shards: DEFAULT_SHARD_COUNT }));
  const width = Math.max(3, String(DEFAULT_SHARD_COUNT - 1).length);
  await Promise.all(
    shards.map((e, i) => writeFile(path.join(`${dbPath}.shards`, `${String(i).padStart(width, '0')}.json`), JSON.stringify({ entries: e }))),
  );
}

interface HelloFigures {
  perSecond: number;
  /** Shares of one core used by the relay and by this process (the clients) meanwhile. */
  relayCpu: number;
  clientsCpu: number;
}

async function hellos(relay: RelayProcess, count: number): Promise<HelloFigures> {
  const relayCpuBefore = await relay.child.cpuSeconds();
  const ownBefore = process.cpuUsage();
  const started = performance.now();
  const seen = new Set<number>();
  await withDeadline(
    forEachLimited(count, HELLO_CONCURRENCY, async (i) => {
      const client = await relay.connect(sourceAddress(AddressBlock.address, i));
      seen.add(client.virtualIp);
      client.close();
    }),
    PHASE_DEADLINE_MS,
    `${count} clients saying Hello`,
  );
  const seconds = (performance.now() - started) / 1000;
  if (seen.size !== count) throw new Error(`${count} clients got ${seen.size} distinct virtual IPs`);
  const own = process.cpuUsage(ownBefore);
  return {
    perSecond: count / seconds,
    relayCpu: ((await relay.child.cpuSeconds()) - relayCpuBefore) / seconds,
    clientsCpu: (own.user + own.system) / 1e6 / seconds,
  };
}

interface StoreLoad {
  loadMs: number;
  plainJsonParseMs: number;
}

async function storeLoad(entries: number): Promise<StoreLoad> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'bench/store-bench.ts', String(entries), STORE_BENCH_ALLOCATION_SECONDS, '16'], {
    timeout: STORE_BENCH_TIMEOUT_MS,
    maxBuffer: 1024 * 1024,
  });
  const figures = JSON.parse(stdout) as { loadMs: number };
  const whole: Record<string, number> = {};
  for (let i = 0; i < entries; i++) whole[prefillIp(i)] = i;
  const text = JSON.stringify({ entries: whole });
  const t0 = performance.now();
  JSON.parse(text);
  return { loadMs: figures.loadMs, plainJsonParseMs: performance.now() - t0 };
}

export async function addressScenario(context: BenchContext): Promise<ScenarioResult> {
  const { prefillEntries, newClients, loadEntries } = context.sizes;
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-bench-store-'));
  let fresh: HelloFigures;
  let known: HelloFigures;
  try {
    const dbPath = path.join(dir, 'db.json');
    await writePrefilledStore(dbPath, prefillEntries);
    const relay = await RelayProcess.start({ ...context.relay, dbFile: dbPath });
    try {
      fresh = await hellos(relay, newClients);
      known = await hellos(relay, newClients);
    } finally {
      await relay.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const cpu = (f: HelloFigures): string => `relay ${(100 * f.relayCpu).toFixed(0)}%, clients ${(100 * f.clientsCpu).toFixed(0)}% of a core`;
  context.log(`  new clients ${fresh.perSecond.toFixed(0)}/s (${cpu(fresh)}), returning clients ${known.perSecond.toFixed(0)}/s (${cpu(known)})`);
  // 0 skips the load-time figure (the smoke spec does; store-bench has its own specs' coverage).
  const load = loadEntries > 0 ? await storeLoad(loadEntries) : undefined;
  if (load) context.log(`  store load ${load.loadMs} ms at ${loadEntries} entries (plain JSON.parse ${load.plainJsonParseMs.toFixed(0)} ms)`);
  const name = '6 addresses';
  return {
    name,
    rows: [
      {
        test: name,
        metric: `new clients/s, ${prefillEntries} in store`,
        unit: '/s',
        alphanet: fresh.perSecond,
        baselineName: 'returning',
        baseline: known.perSecond,
        comparison: 'ratio',
        target: `≥ ${NEW_CLIENTS_PER_SECOND_TARGET}/s`,
        met: fresh.perSecond >= NEW_CLIENTS_PER_SECOND_TARGET,
      },
      ...(load
        ? [
            {
              test: name,
              metric: `store load, ${loadEntries} entries`,
              unit: 'ms',
              alphanet: load.loadMs,
              baselineName: 'JSON.parse',
              baseline: load.plainJsonParseMs,
              comparison: 'ratio' as const,
              target: '',
              met: undefined,
            },
          ]
        : []),
    ],
    details: { prefillEntries, newClients, concurrency: HELLO_CONCURRENCY, fresh, returning: known, storeLoad: load },
  };
}
