/**
 * The address store over a ShardMap (storage/shard-map.ts): many small lowdb databases, so no
 * single write has to serialise the whole map. lowdb's write() runs JSON.stringify of its entire
 * database on the main thread (about 1.3 s at a million entries); a shard holds about 1/1024 of
 * the map, and serialisations are spaced one per event-loop turn so a batch touching many shards
 * never blocks for longer than one shard takes.
 *
 * Allocations are group-committed: every allocation that arrives while a write is running goes
 * into the next write, which rewrites only the shards made dirty since.
 */
import { formatIpv4 } from '../protocol/address.ts';
import type { AddressEntry, AddressStore } from './address-store.ts';
import { AddressPool } from './address-pool.ts';
import { StoreError } from './errors.ts';
import { DEFAULT_IDENTITY_MODE, isEntryKey, type IdentityMode } from './identity-mode.ts';
import { RECLAIMED, type JournalEntry } from './journal.ts';
import { DAY_MS, dayOf } from './last-seen.ts';
import type { SeenEntry, ShardedStoreOptions, ShardBackend, StoreWriteInfo } from './store-types.ts';
import { forEachLimited, ShardMap } from './shard-map.ts';
import type { Subnet } from './subnet.ts';

export { shardOf, type ShardData } from './shard-map.ts';
export type { LoadReport, SeenEntry, ShardBackend, ShardedStoreOptions, StoreWriteInfo } from './store-types.ts';

/** Journal entries between checkpoints: replaying 20,000 lines at open takes a few ms. */
export const DEFAULT_CHECKPOINT_ENTRIES = 20_000;

/** Shard files written at once; libuv's default pool has 4 threads, so more buys nothing. */
const WRITE_CONCURRENCY = 4;

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class ShardedAddressStore implements AddressStore {
  readonly subnet: Subnet;
  /** What entries are keyed by: real IPs or identity keys (docs/STORAGE.md "Identity mode"). */
  readonly identityMode: IdentityMode;
  readonly #backend: ShardBackend;
  readonly #onWrite: ((info: StoreWriteInfo) => void) | undefined;
  readonly #onCheckpointError: ((error: StoreError) => void) | undefined;
  readonly #now: () => number;
  readonly #map: ShardMap;
  /** Entries across all shards. */
  #count = 0;
  readonly #pool: AddressPool;

  /** Real IPs allocated but not yet durable → the sequence number of the write they wait for. */
  readonly #unsynced = new Map<string, number>();
  #dirty = new Set<number>();
  /** Journal mode: records waiting for the next append. */
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
  #closed = false;

  private constructor(options: ShardedStoreOptions) {
    this.subnet = options.subnet;
    this.identityMode = options.identityMode ?? DEFAULT_IDENTITY_MODE;
    this.#backend = options.backend;
    this.#onWrite = options.onWrite;
    this.#onCheckpointError = options.onCheckpointError;
    this.#now = options.now ?? Date.now;
    this.#pool = new AddressPool(options.subnet, options.ipv6Prefix);
    this.#map = new ShardMap(options.backend);
  }

  /** Reads every shard and the journal, checks them, and rebuilds the in-memory indexes. */
  static async load(options: ShardedStoreOptions): Promise<ShardedAddressStore> {
    const store = new ShardedAddressStore(options);
    const reclaims = await store.#load();
    // A reclaimed address must be in the shards before it can be handed out again, or a crash
    // mid-checkpoint could leave its new holder in a shard beside the old holder's journal line.
    if (reclaims > 0 && !options.backend.readOnly) await store.#checkpointNow();
    return store;
  }

  async #load(): Promise<number> {
    const map = this.#map;
    await map.read();
    const counts = map.diskCounts();
    for (let i = 0; i < map.count; i++) {
      const corrupt = (why: string): StoreError =>
        new StoreError('ERR_STORE_CORRUPT', `${map.names[i]} is not a valid store file: ${why}; refusing to start rather than overwrite it`);
      const data = map.data(i);
      if (data.seen !== undefined && (typeof data.seen !== 'object' || data.seen === null)) throw corrupt('seen must be an object');
      for (const [realIp, virtualIp] of Object.entries(data.entries)) {
        if (!isEntryKey(realIp)) throw corrupt(`${JSON.stringify(realIp)} is not an IP address or key entry`);
        if (map.indexOf(realIp) !== i) throw corrupt(`${realIp} belongs in shard ${map.indexOf(realIp)}`);
        if (!this.subnet.contains(virtualIp)) throw corrupt(`${realIp} maps to ${this.#dotted(virtualIp)}, not a usable address of ${this.subnet.cidr}`);
        if (this.#pool.isTaken(virtualIp)) throw corrupt(this.#duplicate(virtualIp, realIp));
        this.#pool.take(realIp, virtualIp);
        this.#count++;
      }
    }
    const reclaimed = new Array<number>(map.count).fill(0);
    let reclaims = 0;
    const journal = this.#backend.journal;
    if (journal !== undefined) {
      const corrupt = (why: string): StoreError =>
        new StoreError('ERR_STORE_CORRUPT', `the journal in ${journal.directory} is not valid: ${why}; refusing to start rather than overwrite it`);
      for (const [realIp, virtualIp, day, kind] of await journal.read()) {
        const known = map.get(realIp);
        const shard = map.indexOf(realIp);
        this.#checkpointDirty.add(shard);
        this.#journaled++;
        if (kind === RECLAIMED) {
          reclaimed[shard]++;
          reclaims++;
          if (known === virtualIp) this.#remove(realIp, virtualIp);
          continue;
        }
        if (known === virtualIp) {
          if (day !== undefined) map.markSeen(realIp, day);
          continue;
        }
        if (known !== undefined) throw corrupt(`${realIp} maps to both ${this.#dotted(known)} and ${this.#dotted(virtualIp)}`);
        if (!isEntryKey(realIp)) throw corrupt(`${JSON.stringify(realIp)} is not an IP address or key entry`);
        if (!this.subnet.contains(virtualIp)) throw corrupt(`${realIp} maps to ${this.#dotted(virtualIp)}, not a usable address of ${this.subnet.cidr}`);
        if (this.#pool.isTaken(virtualIp)) throw corrupt(this.#duplicate(virtualIp, realIp));
        this.#pool.take(realIp, virtualIp);
        this.#count++;
        map.set(realIp, virtualIp);
        if (day !== undefined) map.markSeen(realIp, day);
      }
    }
    this.#backend.verify?.({ counts, found: map.found(), reclaimed, names: map.names });
    // Allocation only ever moves forward, so the next free address is just past the highest one.
    this.#pool.startAfterHighest();
    return reclaims;
  }

  /** "100.64.0.1" */
  #dotted(virtualIp: number): string {
    return formatIpv4(virtualIp);
  }

  /** The message for one virtual IP held by two real IPs, naming both and how to recover. */
  #duplicate(virtualIp: number, second: string): string {
    let first = 'another real IP';
    for (const [realIp, v] of this.#map.all()) if (v === virtualIp && realIp !== second) first = realIp;
    return (
      `virtual IP ${this.#dotted(virtualIp)} is given to two real IPs, ${first} and ${second} (two relays wrote this store at once, before stores were locked). ` +
      `Decide which real IP keeps ${this.#dotted(virtualIp)} and delete the other's entry from its shard file or journal line; that client gets a new address at its next connection`
    );
  }

  get size(): number {
    return this.#count - this.#unsynced.size;
  }

  /** Usable addresses not taken. */
  get free(): number {
    return this.#pool.free;
  }

  lookup(realIp: string): number | undefined {
    return this.#unsynced.has(realIp) ? undefined : this.#map.get(realIp);
  }

  *entries(): IterableIterator<AddressEntry> {
    for (const [realIp, virtualIp] of this.#map.all()) if (!this.#unsynced.has(realIp)) yield { realIp, virtualIp };
  }

  /** Every committed entry with its last-seen day. */
  *seenEntries(): IterableIterator<SeenEntry> {
    const baseline = this.#baselineDay();
    for (const [realIp, virtualIp, day] of this.#map.all()) {
      if (!this.#unsynced.has(realIp)) yield { realIp, virtualIp, lastSeenDay: day ?? baseline };
    }
  }

  /** When `realIp` was last seen (start of that UTC day), or undefined when it has no entry. */
  lastSeen(realIp: string): Date | undefined {
    if (this.lookup(realIp) === undefined) return undefined;
    return new Date((this.#map.seenDay(realIp) ?? this.#baselineDay()) * DAY_MS);
  }

  #baselineDay(): number {
    return this.#backend.baselineDay ?? dayOf(this.#now());
  }

  #remove(realIp: string, virtualIp: number): void {
    this.#map.remove(realIp);
    this.#pool.release(realIp, virtualIp);
    this.#count--;
  }

  findOrAllocate(realIp: string): Promise<number> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const known = this.#map.get(realIp);
    if (known !== undefined) {
      const pendingSeq = this.#unsynced.get(realIp);
      if (pendingSeq === undefined) {
        this.touch(realIp);
        return Promise.resolve(known);
      }
      if (pendingSeq > this.#lastFailedSeq) return this.#waitFor(pendingSeq).then(() => known);
      // Its write failed. The failed batch's work was kept (its record or dirty shard), so a
      // new write retries it; queueing the record again would grow each retry.
      const seq = ++this.#seq;
      this.#unsynced.set(realIp, seq);
      this.#schedule();
      return this.#waitFor(seq).then(() => known);
    }
    if (!isEntryKey(realIp)) {
      return Promise.reject(new StoreError('ERR_INVALID_REAL_IP', `${JSON.stringify(realIp)} is not an IP address or key entry`));
    }
    if (this.#backend.readOnly) return Promise.reject(this.#readOnlyError());
    let virtualIp: number;
    try {
      virtualIp = this.#pool.allocate(realIp);
    } catch (error) {
      return Promise.reject(error);
    }
    const today = dayOf(this.#now());
    this.#count++;
    this.#map.set(realIp, virtualIp);
    this.#map.markSeen(realIp, today);
    this.#batchAllocations++;
    const seq = this.#markDirty(realIp, [realIp, virtualIp, today]);
    return this.#waitFor(seq).then(() => virtualIp);
  }

  /**
   * Records that `realIp` was seen now (the relay calls it when a client leaves, so a client
   * connected for months is not "unseen"). At most one record per entry per UTC day, written with
   * the next batch; nothing waits for it. Unknown real IPs and read-only stores are ignored.
   */
  touch(realIp: string): void {
    if (this.#closed || this.#backend.readOnly || this.#unsynced.has(realIp)) return;
    const virtualIp = this.#map.get(realIp);
    if (virtualIp === undefined) return;
    const today = dayOf(this.#now());
    if ((this.#map.seenDay(realIp) ?? -1) >= today) return;
    this.#map.markSeen(realIp, today);
    this.#queue(realIp, [realIp, virtualIp, today]);
  }

  /**
   * Gives back the address of every entry unseen for `unseenForMs` (last seen on a UTC day that
   * ended at least that long ago), durably, and returns them. For `alphanet store reclaim`, which
   * holds the store's lock, so no relay has any of these clients connected. `dryRun` only lists.
   */
  async reclaim(unseenForMs: number, dryRun = false): Promise<SeenEntry[]> {
    if (this.#closed) throw this.#closedError();
    if (!dryRun && this.#backend.readOnly) throw this.#readOnlyError();
    const cutoff = dayOf(this.#now() - unseenForMs);
    const chosen = [...this.seenEntries()].filter((e) => e.lastSeenDay < cutoff);
    if (dryRun || chosen.length === 0) return chosen;
    let seq = 0;
    for (const { realIp, virtualIp, lastSeenDay } of chosen) {
      this.#remove(realIp, virtualIp);
      seq = this.#queue(realIp, [realIp, virtualIp, lastSeenDay, RECLAIMED]);
    }
    await this.#waitFor(seq);
    return chosen;
  }

  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return this.#flushAll();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#flushAll();
      const journal = this.#backend.journal;
      if (journal === undefined) return;
      await this.#checkpointing;
      // A store that only read leaves the journal alone: its writer may still be appending to it.
      if (this.#appendedSinceLoad && this.#journaled > 0) await this.#checkpoint(await journal.rotate(true));
      await journal.close();
    } finally {
      await this.#backend.afterClose?.();
    }
  }

  #flushAll(): Promise<void> {
    if (this.#unsynced.size === 0 && this.#pending.length === 0 && this.#dirty.size === 0) {
      return this.#writing?.then(() => undefined, () => undefined) ?? Promise.resolve();
    }
    const seq = this.#unsynced.size > 0 ? Math.max(...this.#unsynced.values()) : this.#seq;
    if (seq > this.#lastFailedSeq) return this.#waitFor(seq);
    // Something failed earlier: retry every shard that still holds unsynced entries.
    const retry = ++this.#seq;
    for (const realIp of this.#unsynced.keys()) {
      this.#unsynced.set(realIp, retry);
      if (this.#backend.journal === undefined) this.#dirty.add(this.#map.indexOf(realIp));
    }
    this.#schedule();
    return this.#waitFor(retry);
  }

  #closedError(): StoreError {
    return new StoreError('ERR_STORE_CLOSED', 'the address store is closed');
  }

  #readOnlyError(): StoreError {
    return new StoreError('ERR_STORE_READ_ONLY', 'this address store was opened to read only (no lock); open it for writing to change it');
  }

  /** Queues a record for the next write; returns the sequence number that write settles. */
  #queue(realIp: string, record: JournalEntry): number {
    const seq = ++this.#seq;
    if (this.#backend.journal !== undefined) this.#pending.push(record);
    else this.#dirty.add(this.#map.indexOf(realIp));
    this.#schedule();
    return seq;
  }

  #markDirty(realIp: string, record: JournalEntry): number {
    const seq = this.#queue(realIp, record);
    this.#unsynced.set(realIp, seq);
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
          await forEachLimited(shards.length, WRITE_CONCURRENCY, (i) => this.#map.write(shards[i]));
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
          for (const [realIp] of appended) this.#checkpointDirty.add(this.#map.indexOf(realIp));
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

  /** At open, after replaying reclaims: rotate and checkpoint before anything else is written. */
  async #checkpointNow(): Promise<void> {
    const journal = this.#backend.journal;
    if (journal === undefined) return;
    await this.#backend.beforeFirstWrite?.();
    this.#prepared = true;
    await this.#checkpoint(await journal.rotate());
  }

  /**
   * Rewrites every shard the journal touched since the last rotation, then records the
   * checkpoint and deletes the journal generations it covers. A failure keeps them: the journal
   * still holds every entry.
   */
  async #checkpoint(release: (counts: number[]) => Promise<void>): Promise<void> {
    const shards = [...this.#checkpointDirty];
    const covered = this.#journaled;
    this.#checkpointDirty = new Set();
    this.#journaled = 0;
    try {
      await forEachLimited(shards.length, WRITE_CONCURRENCY, (i) => this.#map.write(shards[i]));
      await this.#backend.afterBatch();
      await release(this.#map.diskCounts());
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
}
