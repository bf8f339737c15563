/**
 * The JSON-file store: a manifest (`--db`), shard files and a journal in `<db>.shards/`, and a
 * lock file `<db>.lock` (docs/STORAGE.md). Opening checks every file the manifest expects and
 * writes nothing until all of it has been read and found whole.
 */
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_IPV6_PREFIX_CAP, DEFAULT_IPV6_PREFIX_LENGTH } from './ipv6-prefix.ts';
import { DurableJsonFile, TEMP_SUFFIX, fsyncPath } from './durable-file.ts';
import { StoreError } from './errors.ts';
import { Journal } from './journal.ts';
import { DEFAULT_IDENTITY_MODE, identityModeMismatch, type IdentityMode } from './identity-mode.ts';
import { dayOf } from './last-seen.ts';
import { acquireStoreLock, type StoreLock } from './lock.ts';
import { MAX_SHARD_COUNT, ManifestFile, newManifest, upgradeManifest, type Manifest } from './manifest.ts';
import { ShardedAddressStore, type LoadReport, type ShardBackend, type ShardData, type StoreWriteInfo } from './sharded-store.ts';
import { DEFAULT_SUBNET, parseSubnet, type Subnet } from './subnet.ts';

/** Where the relay keeps its map unless told otherwise (relative to the working directory). */
export const DEFAULT_DB_PATH = 'data/alphanet.json';
/**
 * Shards of a new store. At a million entries a shard holds about 1,000 entries, which serialise
 * in 1–3 ms, well under the 10 ms event-loop budget (figures in docs/STORAGE.md). Shards are
 * written only by checkpoints, so more files cost little.
 */
export const DEFAULT_SHARD_COUNT = 1024;
/** Attempts of a read-only open when a writer changes the manifest while it reads. */
const READ_ATTEMPTS = 5;
const SHARD_NAME = /^(\d+)\.json$/;

export interface AddressStoreOptions {
  /** The manifest file; parent directories are created. @default 'data/alphanet.json' */
  path?: string;
  /**
   * Subnet virtual IPs come from. An existing store keeps the subnet it was created with; asking
   * for another one rejects with ERR_SUBNET_MISMATCH (addresses are permanent, so neither silently
   * moving every client nor silently ignoring the request is right). With `create: false` and no
   * subnet, the store's own.
   * @default '100.64.0.0/10'
   */
  subnet?: string;
  /** Shard files of a new store; an existing store keeps its own count. @default 1024 */
  shards?: number;
  /** Called after every committed write, e.g. to feed metrics. @default undefined */
  onWrite?: (info: StoreWriteInfo) => void;
  /** Journal entries after which the shards are rewritten and the journal emptied. @default 20_000 */
  checkpointEntries?: number;
  /**
   * A background checkpoint failed (e.g. disk full). Nothing is lost, since the journal keeps every
   * entry, and the next checkpoint retries; the relay should log it. @default undefined
   */
  onCheckpointError?: (error: StoreError) => void;
  /**
   * 'write' takes the store's lock (ERR_STORE_LOCKED while another process holds it); 'read'
   * takes no lock, writes nothing, and refuses allocations (ERR_STORE_READ_ONLY).
   * @default 'write'
   */
  access?: 'write' | 'read';
  /** Create the store when there is none; false rejects with ERR_STORE_MISSING instead. @default true */
  create?: boolean;
  /** At most this many virtual IPs per IPv6 prefix of real IPs (0 = no cap). @default 256 */
  ipv6PrefixCap?: number;
  /** The prefix length `ipv6PrefixCap` counts by, 1..128. @default 64 */
  ipv6PrefixLength?: number;
  /** The clock in ms, for last-seen days. @default Date.now */
  now?: () => number;
  /**
   * What entries are keyed by (docs/STORAGE.md "Identity mode"). A new store records it; an
   * existing store of the other mode rejects with ERR_IDENTITY_MODE_MISMATCH, saying what each mode
   * means and how to start fresh. Undefined opens a store in its own mode (a new one: `ip`).
   * @default undefined
   */
  identityMode?: IdentityMode;
}

function validateShard(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'expected an object';
  const entries = (data as { entries?: unknown }).entries;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return 'entries must be an object';
  return undefined;
}

export function checkShardCount(shards: number): number {
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

/** The names in `directory`, or undefined when it does not exist. */
async function listDirectory(directory: string): Promise<string[] | undefined> {
  try {
    if (!(await stat(directory)).isDirectory()) throw new StoreError('ERR_STORE_CORRUPT', `${directory} is not a directory; move it away`);
    return await readdir(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof StoreError) throw error;
    throw new StoreError('ERR_STORE_READ', `cannot read ${directory}: ${(error as Error).message}`, { cause: error });
  }
}

/** True when the manifest says some entry or journal must be on disk. */
function expectsData(manifest: Manifest): boolean {
  return manifest.legacyJournalsThrough > 0 || Object.keys(manifest.journals).length > 0 || manifest.checkpoint.counts.some((c) => c > 0);
}

/**
 * Opens (or creates) the JSON-file store at `options.path`. Rejects, writing nothing, with:
 * ERR_STORE_LOCKED (another process holds the lock, named), ERR_STORE_MISSING (a file the
 * manifest or journal expects is missing, empty or short, named, with what to do),
 * ERR_STORE_CORRUPT (a file is not valid, named, left as it is), ERR_SUBNET_MISMATCH,
 * ERR_INVALID_SUBNET. The store holds the lock until `close()`.
 */
export async function openAddressStore(options: AddressStoreOptions = {}): Promise<ShardedAddressStore> {
  const manifestPath = path.resolve(options.path ?? DEFAULT_DB_PATH);
  const create = options.create ?? true;
  const requested = options.subnet !== undefined || create ? parseSubnet(options.subnet ?? DEFAULT_SUBNET) : undefined;
  const prefixLength = options.ipv6PrefixLength ?? DEFAULT_IPV6_PREFIX_LENGTH;
  if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > 128) throw new RangeError(`ipv6PrefixLength must be 1..128, got ${prefixLength}`);
  if (options.access === 'read') {
    const manifestText = () => readFile(manifestPath, 'utf8').catch(() => undefined);
    for (let attempt = 1; ; attempt++) {
      const before = await manifestText();
      let store: ShardedAddressStore | undefined;
      let failure: unknown;
      try {
        store = await load(manifestPath, requested, options, undefined);
      } catch (error) {
        failure = error;
      }
      // A writer that checkpointed while we read may have deleted a journal we expected, or
      // rewritten shards: read again, until the manifest stayed the same throughout.
      if (before === (await manifestText()) || attempt === READ_ATTEMPTS) {
        if (store === undefined) throw failure;
        return store;
      }
    }
  }
  const directory = path.dirname(manifestPath);
  if (!create && (await listDirectory(directory)) === undefined) throw noStore(manifestPath);
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    throw new StoreError('ERR_STORE_WRITE', `cannot create ${directory}: ${(error as Error).message}`, { cause: error });
  }
  const lock = await acquireStoreLock(manifestPath);
  try {
    return await load(manifestPath, requested, options, lock);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

function noStore(manifestPath: string): StoreError {
  return new StoreError('ERR_STORE_MISSING', `there is no address store at ${manifestPath}; pass the relay's --db`);
}

async function load(manifestPath: string, requested: Subnet | undefined, options: AddressStoreOptions, lock: StoreLock | undefined): Promise<ShardedAddressStore> {
  const readOnly = lock === undefined;
  const now = options.now ?? Date.now;
  const directory = path.dirname(manifestPath);
  const shardDirectory = `${manifestPath}.shards`;
  const manifestFile = new ManifestFile(manifestPath);
  const raw = await manifestFile.read();
  let names = await listDirectory(shardDirectory);
  let subnet: Subnet;
  if (raw === null) {
    if (options.create === false) throw noStore(manifestPath);
    const data = (names ?? []).filter((n) => SHARD_NAME.test(n) || n.startsWith('journal-'));
    if (data.length > 0) {
      throw new StoreError(
        'ERR_STORE_MISSING',
        `${manifestPath} is missing, but ${shardDirectory} holds ${data.length} store files (${data.slice(0, 3).join(', ')}${data.length > 3 ? ', …' : ''}); ` +
          'without the manifest the store cannot be checked and a new one would hand their addresses out again. Restore the manifest from a backup; nothing was written',
      );
    }
    subnet = requested!;
    const manifest = newManifest(subnet.cidr, checkShardCount(options.shards ?? DEFAULT_SHARD_COUNT), dayOf(now()), options.identityMode);
    manifestFile.adopt(manifest);
    if (!readOnly) {
      try {
        await mkdir(shardDirectory, { recursive: true });
        // The shard directory's own entry must be durable before a manifest that points at it.
        await fsyncPath(directory);
      } catch (error) {
        throw new StoreError('ERR_STORE_WRITE', `cannot create ${shardDirectory}: ${(error as Error).message}`, { cause: error });
      }
      await manifestFile.update(() => {});
      names = [];
    }
  } else {
    try {
      subnet = parseSubnet(raw.subnet);
    } catch (error) {
      throw new StoreError('ERR_STORE_CORRUPT', `${manifestPath} is not a valid store file: ${(error as Error).message}`, { cause: error });
    }
    if (requested !== undefined && subnet.cidr !== requested.cidr) {
      throw new StoreError(
        'ERR_SUBNET_MISMATCH',
        `${manifestPath} was created with subnet ${subnet.cidr}, but ${requested.cidr} was requested; virtual IPs are permanent, so pass --subnet ${subnet.cidr} or use another --db`,
      );
    }
    const stored = (raw.version === 1 ? undefined : raw.identityMode) ?? DEFAULT_IDENTITY_MODE;
    if (options.identityMode !== undefined && options.identityMode !== stored) throw identityModeMismatch(manifestPath, stored, options.identityMode);
    const manifest = raw.version === 1 ? upgradeManifest(raw, dayOf(now())) : raw;
    manifestFile.adopt(manifest);
    if (names === undefined) {
      if (raw.version === 1 || expectsData(manifest)) {
        throw new StoreError(
          'ERR_STORE_MISSING',
          `the shard directory ${shardDirectory} is missing, but ${manifestPath} records entries in it; starting without it would hand every address already told to clients to other real IPs. ` +
            'Restore the directory from a backup or wherever it was moved; to start a new, empty store on purpose, move the manifest away as well (nothing was written)',
        );
      }
      if (!readOnly) await mkdir(shardDirectory);
      names = [];
    }
  }
  const manifest = manifestFile.current;
  const width = Math.max(3, String(manifest.shards - 1).length);
  for (const name of names ?? []) {
    const m = SHARD_NAME.exec(name);
    if (m !== null && (m[1].length !== width || Number(m[1]) >= manifest.shards)) {
      throw new StoreError(
        'ERR_STORE_CORRUPT',
        `${path.join(shardDirectory, name)} is not a shard of this store: ${manifestPath} says ${manifest.shards} shards (files ${'0'.repeat(width)}.json …). ` +
          'Was "shards" in the manifest edited? A store keeps its shard count for good; put the original value back (nothing was written)',
      );
    }
  }
  const journal = names === undefined ? undefined : new Journal(shardDirectory, manifestFile);
  const backend: ShardBackend = {
    shardCount: manifest.shards,
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
    journal,
    verify: (report) => verifyShards(manifestFile, raw?.version === 1, report),
    checkpointEntries: options.checkpointEntries,
    readOnly,
    baselineDay: manifest.baselineDay,
    afterClose: async () => lock?.release(),
  };
  return ShardedAddressStore.load({
    subnet,
    backend,
    onWrite: options.onWrite,
    onCheckpointError: options.onCheckpointError,
    ipv6Prefix: { length: options.ipv6PrefixLength ?? DEFAULT_IPV6_PREFIX_LENGTH, cap: options.ipv6PrefixCap ?? DEFAULT_IPV6_PREFIX_CAP },
    now,
    identityMode: manifest.identityMode ?? DEFAULT_IDENTITY_MODE,
  });
}

/**
 * Every shard file holds at least what the last checkpoint recorded, less what the journal since
 * reclaimed (it may hold more: a crash between rewriting shards and recording the checkpoint).
 * A version-1 store has no record: its counts become the first one.
 */
function verifyShards(manifestFile: ManifestFile, legacy: boolean, report: LoadReport): void {
  const manifest = manifestFile.current;
  if (legacy) {
    manifest.checkpoint.counts = report.counts.slice();
    return;
  }
  report.counts.forEach((count, i) => {
    const recorded = manifest.checkpoint.counts[i];
    if (count >= recorded - report.reclaimed[i]) return;
    const what = report.found[i] ? `holds ${count} entries` : 'is missing';
    throw new StoreError(
      'ERR_STORE_MISSING',
      `${report.names[i]} ${what}, but ${manifestFile.path} recorded ${recorded} entries in it at the last checkpoint; ` +
        'starting without them would hand addresses already told to clients to other real IPs. Restore the file from a backup or wherever it was moved (nothing was written)',
    );
  });
}
