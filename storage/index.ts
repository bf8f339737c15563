/**
 * The relay's persistent real-IP → virtual-IP map. The only module that knows about lowdb.
 *
 * Layout (docs/STORAGE.md): the `--db` file is a small manifest `{ version, subnet, shards }`;
 * the map lives in `<db>.shards/NNN.json`, one lowdb JSON file per shard, chosen by a hash of the
 * real IP. Every file is written temp + fsync + rename + fsync(directory).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Memory } from 'lowdb';
import type { AddressStore } from './address-store.ts';
import { DurableJsonFile, TEMP_SUFFIX, fsyncPath } from './durable-file.ts';
import { StoreError } from './errors.ts';
import { Journal } from './journal.ts';
import { ShardedAddressStore, type ShardBackend, type ShardData, type StoreWriteInfo } from './sharded-store.ts';
import { DEFAULT_SUBNET, parseSubnet } from './subnet.ts';

export type { AddressEntry, AddressStore } from './address-store.ts';
export { StoreError, type StoreErrorCode } from './errors.ts';
export { DEFAULT_SUBNET, parseSubnet, type Subnet } from './subnet.ts';
export { DurableJsonFile } from './durable-file.ts';
export { DEFAULT_CHECKPOINT_ENTRIES, type StoreWriteInfo } from './sharded-store.ts';

/** Where the relay keeps its map unless told otherwise (relative to the working directory). */
export const DEFAULT_DB_PATH = 'data/alphanet.json';
/**
 * Shards of a new store. At a million entries a shard holds about 1,000 entries, which serialise
 * in 1–3 ms, well under the 10 ms event-loop budget (figures in docs/STORAGE.md). Shards are
 * written only by checkpoints, so more files cost little.
 */
export const DEFAULT_SHARD_COUNT = 1024;
/** The manifest format this code writes and reads. */
export const MANIFEST_VERSION = 1;
const MAX_SHARD_COUNT = 65_536;

/** The `--db` file. */
interface Manifest {
  version: number;
  subnet: string;
  shards: number;
}

export interface AddressStoreOptions {
  /** The manifest file; parent directories are created. @default 'data/alphanet.json' */
  path?: string;
  /**
   * Subnet virtual IPs come from. An existing store keeps the subnet it was created with; asking
   * for another one rejects with ERR_SUBNET_MISMATCH (addresses are permanent, so neither silently
   * moving every client nor silently ignoring the request is right).
   * @default '100.64.0.0/10'
   */
  subnet?: string;
  /** Shard files of a new store; an existing store keeps its own count. @default 1024 */
  shards?: number;
  /** Called after every committed write, e.g. to feed metrics. @default undefined */
  onWrite?: (info: StoreWriteInfo) => void;
  /**
   * Journal entries after which the shards are rewritten and the journal emptied.
   * @default 20_000
   */
  checkpointEntries?: number;
  /**
   * A background checkpoint failed (e.g. disk full). Nothing is lost, since the journal keeps every
   * entry, and the next checkpoint retries; the relay should log it. @default undefined
   */
  onCheckpointError?: (error: StoreError) => void;
}

export interface MemoryAddressStoreOptions {
  /** @default '100.64.0.0/10' */
  subnet?: string;
  /** @default 16 */
  shards?: number;
  /** @default undefined */
  onWrite?: (info: StoreWriteInfo) => void;
}

function validateManifest(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'expected an object';
  const m = data as Partial<Record<keyof Manifest, unknown>>;
  if (m.version !== MANIFEST_VERSION) return `unsupported version ${JSON.stringify(m.version)} (expected ${MANIFEST_VERSION})`;
  if (typeof m.subnet !== 'string') return 'subnet must be a string';
  if (typeof m.shards !== 'number' || !Number.isInteger(m.shards) || m.shards < 1 || m.shards > MAX_SHARD_COUNT) {
    return `shards must be an integer 1..${MAX_SHARD_COUNT}`;
  }
  return undefined;
}

function validateShard(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'expected an object';
  const entries = (data as { entries?: unknown }).entries;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return 'entries must be an object';
  return undefined;
}

function checkShardCount(shards: number): number {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARD_COUNT) {
    throw new RangeError(`shards must be an integer 1..${MAX_SHARD_COUNT}, got ${shards}`);
  }
  return shards;
}

/** Removes temp files a crash left behind; the real files beside them are the committed state. */
async function removeLeftovers(directory: string, prefix: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await Promise.all(
    names.filter((n) => n.startsWith(prefix) && n.endsWith(TEMP_SUFFIX)).map((n) => rm(path.join(directory, n), { force: true })),
  );
}

/**
 * Opens (or creates) the JSON-file store at `options.path`. Rejects with ERR_STORE_CORRUPT naming
 * the file when the manifest or a shard is not valid JSON, leaving it untouched; with
 * ERR_SUBNET_MISMATCH when the store was made with another subnet; with ERR_INVALID_SUBNET.
 *
 * One process writes a store at a time (others may open it to read). Temp files a crashed writer
 * left behind are ignored, and removed by the next store that writes.
 */
export async function openAddressStore(options: AddressStoreOptions = {}): Promise<AddressStore> {
  const manifestPath = path.resolve(options.path ?? DEFAULT_DB_PATH);
  const requested = parseSubnet(options.subnet ?? DEFAULT_SUBNET);
  const directory = path.dirname(manifestPath);
  const shardDirectory = `${manifestPath}.shards`;
  try {
    await mkdir(shardDirectory, { recursive: true });
  } catch (error) {
    throw new StoreError('ERR_STORE_WRITE', `cannot create ${shardDirectory}: ${(error as Error).message}`, { cause: error });
  }

  const manifestFile = new DurableJsonFile<Manifest>(manifestPath, { validate: validateManifest });
  let manifest = await manifestFile.read();
  if (manifest === null) {
    manifest = { version: MANIFEST_VERSION, subnet: requested.cidr, shards: checkShardCount(options.shards ?? DEFAULT_SHARD_COUNT) };
    // The shard directory's own entry must be durable before a manifest that points at it.
    await fsyncPath(directory);
    await manifestFile.write(manifest);
  }
  let stored;
  try {
    stored = parseSubnet(manifest.subnet);
  } catch (error) {
    throw new StoreError('ERR_STORE_CORRUPT', `${manifestPath} is not a valid store file: ${(error as Error).message}`, { cause: error });
  }
  if (stored.cidr !== requested.cidr) {
    throw new StoreError(
      'ERR_SUBNET_MISMATCH',
      `${manifestPath} was created with subnet ${stored.cidr}, but ${requested.cidr} was requested; virtual IPs are permanent, so pass --subnet ${stored.cidr} or use another --db`,
    );
  }

  const shardCount = manifest.shards;
  const width = Math.max(3, String(shardCount - 1).length);
  const backend: ShardBackend = {
    shardCount,
    adapter: (index, serialize) =>
      new DurableJsonFile<ShardData>(path.join(shardDirectory, `${String(index).padStart(width, '0')}.json`), {
        validate: validateShard,
        serialize,
        // Renames of one batch share a directory; afterBatch syncs it once.
        syncDirectory: false,
      }),
    afterBatch: async () => {
      try {
        await fsyncPath(shardDirectory);
      } catch (error) {
        throw new StoreError('ERR_STORE_WRITE', `cannot fsync ${shardDirectory}: ${(error as Error).message}`, { cause: error });
      }
    },
    // Temp files a crash left behind are never read; removing them waits until this store writes,
    // so opening a second store to read never pulls a temp file from under a live writer.
    beforeFirstWrite: async () => {
      try {
        await removeLeftovers(directory, `${path.basename(manifestPath)}.`);
        await removeLeftovers(shardDirectory, '');
      } catch (error) {
        throw new StoreError('ERR_STORE_WRITE', `cannot remove leftover temp files: ${(error as Error).message}`, { cause: error });
      }
    },
    journal: new Journal(shardDirectory),
    checkpointEntries: options.checkpointEntries,
  };
  return ShardedAddressStore.load({ subnet: stored, backend, onWrite: options.onWrite, onCheckpointError: options.onCheckpointError });
}

/**
 * A store held in memory through lowdb's Memory adapter, with the same allocation and
 * group-commit logic as the file store. For specs and embedding; nothing survives the process.
 */
export async function openMemoryAddressStore(options: MemoryAddressStoreOptions = {}): Promise<AddressStore> {
  const subnet = parseSubnet(options.subnet ?? DEFAULT_SUBNET);
  const backend: ShardBackend = {
    shardCount: checkShardCount(options.shards ?? 16),
    adapter: () => new Memory<ShardData>(),
    afterBatch: async () => {},
  };
  return ShardedAddressStore.load({ subnet, backend, onWrite: options.onWrite });
}
