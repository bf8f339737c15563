/**
 * The address map, sharded over many small lowdb databases so no single write has to serialise
 * the whole map. lowdb's write() runs JSON.stringify of its entire database on the main thread
 * (about 1.3 s at a million entries); a shard holds about 1/256 of the map, so one shard's
 * serialisation stays in the low milliseconds, and serialisations are spaced one per event-loop
 * turn so a batch touching many shards never blocks for longer than one shard takes.
 *
 * Allocations are group-committed: every allocation that arrives while a write is running goes
 * into the next write, which rewrites only the shards made dirty since.
 */
import { isIP } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Adapter } from 'lowdb';
import { Low } from 'lowdb';
import type { AddressEntry, AddressStore } from './address-store.ts';
import { StoreError } from './errors.ts';
import type { Journal, JournalEntry } from './journal.ts';
import type { Subnet } from './subnet.ts';

/** What one shard file holds. */
export interface ShardData {
  /** real IP → virtual IP (unsigned 32-bit integer). */
  entries: Record<string, number>;
}

/** Figures of one committed write, for metrics. */
export interface StoreWriteInfo {
  /** Wall time of the batch: serialising, writing, fsyncing and renaming every dirty shard. */
  durationMs: number;
  /** Shard files rewritten. */
  shards: number;
  /** Allocations made durable by this write. */
  entries: number;
}

/** How the store reaches its shards; the file and memory stores differ only here. */
export interface ShardBackend {
  readonly shardCount: number;
  /**
   * The lowdb adapter of shard `index`, called once per shard. `serialize` spaces serialisations
   * out over event-loop turns; file adapters should use it. `filename` names the shard in errors.
   */
  adapter(index: number, serialize: (data: unknown) => Promise<string>): Adapter<ShardData> & { readonly filename?: string };
  /** Runs once after every dirty shard of a batch is written (e.g. fsync the directory). */
  afterBatch(): Promise<void>;
  /**
   * When present, each batch is appended to this journal (one fsync) and shards are rewritten
   * only by checkpoints; when absent, each batch rewrites its dirty shards.
   */
  journal?: Journal;
  /**
   * Runs once, before this store's first write: a store that only reads must not touch files a
   * writer in another store may be using.
   */
  beforeFirstWrite?(): Promise<void>;
  /** Journal entries that trigger a checkpoint. @default 20_000 */
  checkpointEntries?: number;
}

/** Journal entries between checkpoints: replaying 20,000 lines at open takes a few ms. */
export const DEFAULT_CHECKPOINT_ENTRIES = 20_000;

export interface ShardedStoreOptions {
  subnet: Subnet;
  backend: ShardBackend;
  onWrite?: (info: StoreWriteInfo) => void;
  /** A background checkpoint failed; nothing is lost (the journal keeps it) and the next one retries. */
  onCheckpointError?: (error: StoreError) => void;
}

/** Shard files written at once; libuv's default pool has 4 threads, so more buys nothing. */
const WRITE_CONCURRENCY = 4;
/** Shard files read at once when opening. */
const READ_CONCURRENCY = 8;

/** FNV-1a: cheap and even, so shards stay balanced even when real IPs share a prefix. */
export function shardOf(realIp: string, shardCount: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < realIp.length; i++) {
    hash ^= realIp.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shardCount;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

async function forEachLimited(count: number, limit: number, run: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

export class ShardedAddressStore implements AddressStore {
  readonly subnet: Subnet;
  readonly #backend: ShardBackend;
  readonly #onWrite: ((info: StoreWriteInfo) => void) | undefined;
  readonly #onCheckpointError: ((error: StoreError) => void) | undefined;
  readonly #shards: Low<ShardData>[] = [];
  /** Entries across all shards. The shard objects are the only index: a second Map doubled the heap. */
  #count = 0;
  /** One bit per usable address, set when taken. 512 KiB for a /10. */
  readonly #taken: Uint8Array;
  #cursor = 0;
  #free: number;

  /** Real IPs allocated but not yet durable → the sequence number of the write they wait for. */
  readonly #unsynced = new Map<string, number>();
  #dirty = new Set<number>();
  /** Journal mode: mappings waiting for the next append. */
  #pending: JournalEntry[] = [];
  /** Journal mode: entries in the journal not yet in a checkpoint, and the shards they touch. */
  #journaled = 0;
  #checkpointDirty = new Set<number>();
  #checkpointing: Promise<void> | undefined;
  #appendedSinceLoad = false;
  #prepared = false;
  #seq = 0;
  #lastFailedSeq = 0;
  #batchAllocations = 0;
  #waiters: Waiter[] = [];
  #writing: Promise<void> | undefined;
  #scheduled = false;
  #serializer: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(options: ShardedStoreOptions) {
    this.subnet = options.subnet;
    this.#backend = options.backend;
    this.#onWrite = options.onWrite;
    this.#onCheckpointError = options.onCheckpointError;
    this.#taken = new Uint8Array(Math.ceil(options.subnet.usable / 8));
    this.#free = options.subnet.usable;
  }

  /** Reads every shard and rebuilds the in-memory indexes. */
  static async load(options: ShardedStoreOptions): Promise<ShardedAddressStore> {
    const store = new ShardedAddressStore(options);
    await store.#load();
    return store;
  }

  async #load(): Promise<void> {
    const { shardCount } = this.#backend;
    const names: string[] = [];
    for (let i = 0; i < shardCount; i++) {
      const adapter = this.#backend.adapter(i, this.#serialize);
      names.push(adapter.filename ?? `shard ${i}`);
      this.#shards.push(new Low<ShardData>(adapter, { entries: {} }));
    }
    await forEachLimited(shardCount, READ_CONCURRENCY, (i) => this.#shards[i].read());
    let highest = -1;
    for (let i = 0; i < shardCount; i++) {
      const name = names[i];
      const corrupt = (why: string): StoreError =>
        new StoreError('ERR_STORE_CORRUPT', `${name} is not a valid store file: ${why}; refusing to start rather than overwrite it`);
      for (const [realIp, virtualIp] of Object.entries(this.#shards[i].data.entries)) {
        if (isIP(realIp) === 0) throw corrupt(`${JSON.stringify(realIp)} is not an IP address`);
        if (shardOf(realIp, shardCount) !== i) throw corrupt(`${realIp} belongs in shard ${shardOf(realIp, shardCount)}`);
        if (!this.subnet.contains(virtualIp)) throw corrupt(`${realIp} maps to ${virtualIp}, not a usable address of ${this.subnet.cidr}`);
        const offset = virtualIp - this.subnet.first;
        if (this.#isTaken(offset)) throw corrupt(`virtual IP ${virtualIp} is given to two real IPs`);
        this.#take(offset);
        this.#count++;
        if (offset > highest) highest = offset;
      }
    }
    const journal = this.#backend.journal;
    if (journal !== undefined) {
      const corrupt = (why: string): StoreError =>
        new StoreError('ERR_STORE_CORRUPT', `the journal in ${journal.directory} is not valid: ${why}; refusing to start rather than overwrite it`);
      for (const [realIp, virtualIp] of await journal.read()) {
        const known = this.#get(realIp);
        if (known === virtualIp) continue;
        if (known !== undefined) throw corrupt(`${realIp} maps to both ${known} and ${virtualIp}`);
        if (isIP(realIp) === 0) throw corrupt(`${JSON.stringify(realIp)} is not an IP address`);
        if (!this.subnet.contains(virtualIp)) throw corrupt(`${realIp} maps to ${virtualIp}, not a usable address of ${this.subnet.cidr}`);
        const offset = virtualIp - this.subnet.first;
        if (this.#isTaken(offset)) throw corrupt(`virtual IP ${virtualIp} is given to two real IPs`);
        this.#take(offset);
        this.#count++;
        const shard = shardOf(realIp, shardCount);
        this.#shards[shard].data.entries[realIp] = virtualIp;
        this.#checkpointDirty.add(shard);
        this.#journaled++;
        if (offset > highest) highest = offset;
      }
    }
    // Allocation only ever moves forward, so the next free address is just past the highest one.
    this.#cursor = (highest + 1) % this.subnet.usable;
  }

  get size(): number {
    return this.#count - this.#unsynced.size;
  }

  lookup(realIp: string): number | undefined {
    return this.#unsynced.has(realIp) ? undefined : this.#get(realIp);
  }

  *entries(): IterableIterator<AddressEntry> {
    for (const shard of this.#shards) {
      for (const [realIp, virtualIp] of Object.entries(shard.data.entries)) {
        if (!this.#unsynced.has(realIp)) yield { realIp, virtualIp };
      }
    }
  }

  /** Own properties only, so a name like "constructor" is never mistaken for an entry. */
  #get(realIp: string): number | undefined {
    const entries = this.#shards[shardOf(realIp, this.#backend.shardCount)].data.entries;
    return Object.hasOwn(entries, realIp) ? entries[realIp] : undefined;
  }

  findOrAllocate(realIp: string): Promise<number> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const known = this.#get(realIp);
    if (known !== undefined) {
      const pendingSeq = this.#unsynced.get(realIp);
      if (pendingSeq === undefined) return Promise.resolve(known);
      if (pendingSeq > this.#lastFailedSeq) return this.#waitFor(pendingSeq).then(() => known);
      // Its write failed: the shard is still dirty, so the next write retries it.
      const seq = this.#markDirty(realIp, known);
      return this.#waitFor(seq).then(() => known);
    }
    if (isIP(realIp) === 0) {
      return Promise.reject(new StoreError('ERR_INVALID_REAL_IP', `${JSON.stringify(realIp)} is not an IP address`));
    }
    if (this.#free === 0) {
      return Promise.reject(
        new StoreError('ERR_ADDRESS_SPACE_EXHAUSTED', `every one of the ${this.subnet.usable} usable addresses of ${this.subnet.cidr} is taken`),
      );
    }
    const offset = this.#nextFreeOffset();
    this.#take(offset);
    const virtualIp = this.subnet.first + offset;
    this.#count++;
    this.#shards[shardOf(realIp, this.#backend.shardCount)].data.entries[realIp] = virtualIp;
    this.#batchAllocations++;
    const seq = this.#markDirty(realIp, virtualIp);
    return this.#waitFor(seq).then(() => virtualIp);
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return this.#flushAll();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#flushAll();
    const journal = this.#backend.journal;
    if (journal === undefined) return;
    await this.#checkpointing;
    // A store that only read leaves the journal alone: its writer may still be appending to it.
    if (this.#appendedSinceLoad && this.#journaled > 0) await this.#checkpoint(await journal.rotate(true));
    await journal.close();
  }

  #flushAll(): Promise<void> {
    if (this.#unsynced.size === 0) return this.#writing?.then(() => undefined, () => undefined) ?? Promise.resolve();
    const seq = Math.max(...this.#unsynced.values());
    if (seq > this.#lastFailedSeq) return this.#waitFor(seq);
    // Something failed earlier: retry every shard that still holds unsynced entries.
    const retry = ++this.#seq;
    for (const realIp of this.#unsynced.keys()) {
      this.#unsynced.set(realIp, retry);
      if (this.#backend.journal === undefined) this.#dirty.add(shardOf(realIp, this.#backend.shardCount));
    }
    this.#schedule();
    return this.#waitFor(retry);
  }

  #closedError(): StoreError {
    return new StoreError('ERR_STORE_CLOSED', 'the address store is closed');
  }

  #isTaken(offset: number): boolean {
    return (this.#taken[offset >>> 3] & (1 << (offset & 7))) !== 0;
  }

  #take(offset: number): void {
    this.#taken[offset >>> 3] |= 1 << (offset & 7);
    this.#free--;
  }

  #nextFreeOffset(): number {
    const { usable } = this.subnet;
    let offset = this.#cursor;
    while (this.#isTaken(offset)) offset = offset + 1 === usable ? 0 : offset + 1;
    this.#cursor = offset + 1 === usable ? 0 : offset + 1;
    return offset;
  }

  #markDirty(realIp: string, virtualIp: number): number {
    const seq = ++this.#seq;
    this.#unsynced.set(realIp, seq);
    if (this.#backend.journal !== undefined) this.#pending.push([realIp, virtualIp]);
    else this.#dirty.add(shardOf(realIp, this.#backend.shardCount));
    this.#schedule();
    return seq;
  }

  #waitFor(seq: number): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#waiters.push({ seq, resolve, reject }));
  }

  #schedule(): void {
    if (this.#writing !== undefined || this.#scheduled) return;
    this.#scheduled = true;
    // One turn of the loop lets every allocation of the same burst join this write.
    setImmediate(() => {
      this.#scheduled = false;
      this.#writing = this.#writeLoop().finally(() => {
        this.#writing = undefined;
      });
    });
  }

  #hasWork(): boolean {
    return this.#backend.journal !== undefined ? this.#pending.length > 0 : this.#dirty.size > 0;
  }

  async #writeLoop(): Promise<void> {
    while (this.#hasWork()) {
      const batchSeq = this.#seq;
      const journal = this.#backend.journal;
      const entries = this.#batchAllocations;
      this.#batchAllocations = 0;
      const shards = journal === undefined ? [...this.#dirty] : [];
      const appended = this.#pending;
      this.#dirty = new Set();
      this.#pending = [];
      const started = performance.now();
      let failure: unknown;
      try {
        if (!this.#prepared) {
          await this.#backend.beforeFirstWrite?.();
          this.#prepared = true;
        }
        if (journal !== undefined) {
          await journal.append(appended);
        } else {
          await forEachLimited(shards.length, WRITE_CONCURRENCY, (i) => this.#writeShard(shards[i]));
          await this.#backend.afterBatch();
        }
      } catch (error) {
        failure = error;
      }
      if (failure === undefined) {
        for (const [realIp, seq] of this.#unsynced) if (seq <= batchSeq) this.#unsynced.delete(realIp);
        this.#settle(batchSeq, (w) => w.resolve());
        this.#onWrite?.({ durationMs: performance.now() - started, shards: journal === undefined ? shards.length : 0, entries });
        if (journal !== undefined) {
          this.#appendedSinceLoad = true;
          this.#journaled += appended.length;
          for (const [realIp] of appended) this.#checkpointDirty.add(shardOf(realIp, this.#backend.shardCount));
          const threshold = this.#backend.checkpointEntries ?? DEFAULT_CHECKPOINT_ENTRIES;
          if (this.#journaled >= threshold && this.#checkpointing === undefined) {
            // Rotation happens here, between appends; the shard rewriting runs beside later batches.
            try {
              const release = await journal.rotate();
              this.#checkpointing = this.#checkpoint(release)
                .catch((error: unknown) => this.#onCheckpointError?.(error as StoreError))
                .finally(() => {
                  this.#checkpointing = undefined;
                });
            } catch (error) {
              this.#onCheckpointError?.(error as StoreError);
            }
          }
        }
      } else {
        // Keep the work so a later write retries it; the callers waiting now are told.
        for (const shard of shards) this.#dirty.add(shard);
        this.#pending = appended.concat(this.#pending);
        this.#batchAllocations += entries;
        this.#lastFailedSeq = batchSeq;
        const error =
          failure instanceof StoreError ? failure : new StoreError('ERR_STORE_WRITE', `address store write failed: ${String(failure)}`, { cause: failure });
        this.#settle(batchSeq, (w) => w.reject(error));
        // Retry only for callers that arrived after this batch began.
        if (!this.#waiters.some((w) => w.seq > batchSeq)) return;
      }
    }
  }

  /**
   * Rewrites every shard the journal touched since the last rotation, then deletes the journal
   * generations that are now covered. A failure keeps them: the journal still holds every entry.
   */
  async #checkpoint(release: () => Promise<void>): Promise<void> {
    const shards = [...this.#checkpointDirty];
    const covered = this.#journaled;
    this.#checkpointDirty = new Set();
    this.#journaled = 0;
    try {
      await forEachLimited(shards.length, WRITE_CONCURRENCY, (i) => this.#writeShard(shards[i]));
      await this.#backend.afterBatch();
      await release();
    } catch (error) {
      for (const shard of shards) this.#checkpointDirty.add(shard);
      this.#journaled += covered;
      throw error;
    }
  }

  #settle(batchSeq: number, settle: (waiter: Waiter) => void): void {
    const remaining: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (waiter.seq <= batchSeq) settle(waiter);
      else remaining.push(waiter);
    }
    this.#waiters = remaining;
  }

  #writeShard(index: number): Promise<void> {
    return this.#shards[index].write();
  }

  /**
   * Serialises one value per event-loop turn. Each shard's JSON.stringify is short, but a batch
   * may touch every shard; spacing them lets socket I/O run between them.
   */
  readonly #serialize = (data: unknown): Promise<string> => {
    const text = this.#serializer.then(() => nextTurn()).then(() => JSON.stringify(data));
    this.#serializer = text.catch(() => undefined);
    return text;
  };
}
