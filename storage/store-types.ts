/** The sharded store's options and the seams between it and its backends (file, memory). */
import type { Adapter } from 'lowdb';
import type { Ipv6PrefixCap } from './address-pool.ts';
import type { AddressEntry } from './address-store.ts';
import type { StoreError } from './errors.ts';
import type { Journal } from './journal.ts';
import type { ShardData } from './shard-map.ts';
import type { Subnet } from './subnet.ts';
import type { IdentityMode } from './identity-mode.ts';

/** Figures of one committed write, for metrics. */
export interface StoreWriteInfo {
  /** Wall time of the batch: serialising, writing, fsyncing and renaming every dirty shard. */
  durationMs: number;
  /** Shard files rewritten. */
  shards: number;
  /** Allocations made durable by this write. */
  entries: number;
}

/** What the load found, for a backend to check against its own records. */
export interface LoadReport {
  /** Entries read from each shard file. */
  counts: number[];
  /** Whether each shard file existed. */
  found: boolean[];
  /** Journal records since the checkpoint that reclaimed an entry of each shard. */
  reclaimed: number[];
  /** Each shard's name, for messages. */
  names: string[];
}

/** How the store reaches its shards; the file and memory stores differ only here. */
export interface ShardBackend {
  readonly shardCount: number;
  /**
   * The lowdb adapter of shard `index`, called once per shard. `serialize` spaces serialisations
   * out over event-loop turns; file adapters should use it. `filename` names the shard in errors,
   * `found` says whether the last read found the file.
   */
  adapter(index: number, serialize: (data: unknown) => Promise<string>): Adapter<ShardData> & { readonly filename?: string; readonly found?: boolean };
  /** Runs once after every dirty shard of a batch is written (e.g. fsync the directory). */
  afterBatch(): Promise<void>;
  /**
   * When present, each batch is appended to this journal (one fsync) and shards are rewritten
   * only by checkpoints; when absent, each batch rewrites its dirty shards.
   */
  journal?: Journal;
  /** Checks what the load found (e.g. against the manifest's counts); throws a StoreError to refuse. */
  verify?(report: LoadReport): void;
  /**
   * Runs once, before this store's first write: a store that only reads must not touch files a
   * writer in another store may be using.
   */
  beforeFirstWrite?(): Promise<void>;
  /** Journal entries that trigger a checkpoint. @default 20_000 */
  checkpointEntries?: number;
  /** Refuse every write (ERR_STORE_READ_ONLY). @default false */
  readOnly?: boolean;
  /** Entries with no last-seen day count as seen on this UTC day. @default today */
  baselineDay?: number;
  /** Runs at the end of close(), whatever happened (e.g. release the lock). */
  afterClose?(): Promise<void>;
}

export interface ShardedStoreOptions {
  subnet: Subnet;
  backend: ShardBackend;
  onWrite?: (info: StoreWriteInfo) => void;
  /** A background checkpoint failed; nothing is lost (the journal keeps it) and the next one retries. */
  onCheckpointError?: (error: StoreError) => void;
  /** The IPv6 per-prefix cap. */
  ipv6Prefix: Ipv6PrefixCap;
  /** The clock, in ms (last-seen days). @default Date.now */
  now?: () => number;
  /** What the entries are keyed by; the file store takes it from its manifest. @default 'ip' */
  identityMode?: IdentityMode;
}

/** One entry with its last-seen day, for `alphanet store list` and reclaim. */
export interface SeenEntry extends AddressEntry {
  /** UTC day number the real IP was last seen (docs/STORAGE.md). */
  lastSeenDay: number;
}

