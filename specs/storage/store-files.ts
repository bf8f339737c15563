/** Real store files on temp directories, for the storage specs. */
import { cp, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openAddressStore, type AddressStoreOptions, type ShardedAddressStore } from '../../storage/index.ts';
import type { Cleanup } from './address-store.contract.ts';

export const SHARDS = 16;

/** A fresh directory removed after the test; returns `<dir>/data/alphanet.json`. */
export async function tempDb(t: Cleanup): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'data', 'alphanet.json');
}

/** Opens a writer closed at teardown (16 shards unless told otherwise). */
export async function openTracked(t: Cleanup, dbPath: string, options: AddressStoreOptions = {}): Promise<ShardedAddressStore> {
  const store = await openAddressStore({ path: dbPath, shards: SHARDS, ...options });
  t.teardown(() => store.close().catch(() => undefined));
  return store;
}

/** Every file under `dir` → its bytes, to show that a refused open wrote nothing. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (at: string): Promise<void> => {
    for (const name of await readdir(at)) {
      const full = path.join(at, name);
      if ((await stat(full)).isDirectory()) await walk(full);
      else files.set(path.relative(dir, full), (await readFile(full)).toString('base64'));
    }
  };
  await walk(dir);
  return files;
}

export const ip = (i: number): string => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

/** A store with `count` entries, closed (so checkpointed); returns the real IP → virtual IP map. */
export async function populate(dbPath: string, count: number, options: AddressStoreOptions = {}): Promise<Map<string, number>> {
  const store = await openAddressStore({ path: dbPath, shards: SHARDS, ...options });
  const ips = Array.from({ length: count }, (_, i) => ip(i + 1));
  const vs = await Promise.all(ips.map((realIp) => store.findOrAllocate(realIp)));
  await store.close();
  return new Map(ips.map((realIp, i) => [realIp, vs[i]]));
}

/**
 * The files of a store exactly as a crash would leave them: copied while its writer is open
 * (after its allocations resolved), so the journal is still there and the lock file is stale.
 * Returns the copy's manifest path.
 */
export async function crashCopy(t: Cleanup, store: ShardedAddressStore, dbPath: string): Promise<string> {
  await store.flush();
  const target = await tempDb(t);
  await cp(path.dirname(dbPath), path.dirname(target), { recursive: true });
  return target;
}

/** The shard file holding `realIp`'s entry. */
export async function shardFileOf(dbPath: string, realIp: string): Promise<string> {
  const dir = `${dbPath}.shards`;
  for (const name of await readdir(dir)) {
    if (!/^\d+\.json$/.test(name)) continue;
    const data = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as { entries: Record<string, number> };
    if (Object.hasOwn(data.entries, realIp)) return path.join(dir, name);
  }
  throw new Error(`no shard holds ${realIp}`);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
