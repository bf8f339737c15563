/**
 * The map itself: many small lowdb databases, one per shard, so no single write has to serialise
 * the whole map. The shard objects are the only index (a second Map doubled the heap).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Low } from 'lowdb';
import type { ShardBackend } from './store-types.ts';

/** What one shard file holds. */
export interface ShardData {
  /** real IP → virtual IP (unsigned 32-bit integer). */
  entries: Record<string, number>;
  /** real IP → UTC day number it was last seen (docs/STORAGE.md); absent = the store's baseline day. */
  seen?: Record<string, number>;
}

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

/** Runs `run(0..count-1)` with at most `limit` at once. */
export async function forEachLimited(count: number, limit: number, run: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

export class ShardMap {
  readonly count: number;
  /** Each shard's name, for messages (its file name for the file store). */
  readonly names: string[] = [];
  readonly #adapters: ReturnType<ShardBackend['adapter']>[];
  readonly #shards: Low<ShardData>[];
  /** Entries in each shard file as last written (or read): the counts a checkpoint records. */
  readonly #diskCounts: number[];
  /** Entries counted by the last serialisation of each shard, adopted once its write succeeds. */
  readonly #serializedCounts: number[];
  #serializer: Promise<unknown> = Promise.resolve();

  constructor(backend: ShardBackend) {
    this.count = backend.shardCount;
    this.#adapters = Array.from({ length: this.count }, (_, i) => backend.adapter(i, (data) => this.#serialize(i, data)));
    this.#shards = this.#adapters.map((adapter, i) => {
      this.names.push(adapter.filename ?? `shard ${i}`);
      return new Low<ShardData>(adapter, { entries: {} });
    });
    this.#diskCounts = new Array<number>(this.count).fill(0);
    this.#serializedCounts = new Array<number>(this.count).fill(0);
  }

  /** Reads every shard; their entries are then as on disk (checked by the caller). */
  async read(): Promise<void> {
    await forEachLimited(this.count, READ_CONCURRENCY, (i) => this.#shards[i].read());
    for (let i = 0; i < this.count; i++) this.#diskCounts[i] = Object.keys(this.#shards[i].data.entries).length;
  }

  /** Whether each shard file existed at read (true for backends that cannot tell). */
  found(): boolean[] {
    return this.#adapters.map((a) => a.found ?? true);
  }

  /** Entries in each shard file as last written or read. */
  diskCounts(): number[] {
    return this.#diskCounts.slice();
  }

  data(index: number): ShardData {
    return this.#shards[index].data;
  }

  indexOf(realIp: string): number {
    return shardOf(realIp, this.count);
  }

  /** Own properties only, so a name like "constructor" is never mistaken for an entry. */
  get(realIp: string): number | undefined {
    const entries = this.data(this.indexOf(realIp)).entries;
    return Object.hasOwn(entries, realIp) ? entries[realIp] : undefined;
  }

  set(realIp: string, virtualIp: number): void {
    this.data(this.indexOf(realIp)).entries[realIp] = virtualIp;
  }

  remove(realIp: string): void {
    const data = this.data(this.indexOf(realIp));
    delete data.entries[realIp];
    if (data.seen !== undefined) delete data.seen[realIp];
  }

  /** The day `realIp` was last seen, or undefined when none is recorded. */
  seenDay(realIp: string): number | undefined {
    const seen = this.data(this.indexOf(realIp)).seen;
    return seen !== undefined && Object.hasOwn(seen, realIp) ? seen[realIp] : undefined;
  }

  /** Records `day` unless a later one is recorded. */
  markSeen(realIp: string, day: number): void {
    const data = this.data(this.indexOf(realIp));
    data.seen ??= {};
    if (!Object.hasOwn(data.seen, realIp) || data.seen[realIp] < day) data.seen[realIp] = day;
  }

  /** Every entry: real IP, virtual IP, last-seen day if recorded. */
  *all(): IterableIterator<[realIp: string, virtualIp: number, seenDay: number | undefined]> {
    for (const shard of this.#shards) {
      const seen = shard.data.seen ?? {};
      for (const [realIp, virtualIp] of Object.entries(shard.data.entries)) {
        yield [realIp, virtualIp, Object.hasOwn(seen, realIp) ? seen[realIp] : undefined];
      }
    }
  }

  /** Writes shard `index` through its adapter. */
  async write(index: number): Promise<void> {
    await this.#shards[index].write();
    this.#diskCounts[index] = this.#serializedCounts[index];
  }

  /**
   * Serialises one value per event-loop turn. Each shard's JSON.stringify is short, but a batch
   * may touch every shard; spacing them lets socket I/O run between them. Records how many
   * entries each shard's text holds: the count its checkpoint records.
   */
  #serialize(index: number, data: unknown): Promise<string> {
    const text = this.#serializer
      .then(() => nextTurn())
      .then(() => {
        this.#serializedCounts[index] = Object.keys((data as ShardData).entries).length;
        return JSON.stringify(data);
      });
    this.#serializer = text.catch(() => undefined);
    return text;
  }
}
