/**
 * The write-ahead journal in front of the shards. Rewriting every dirty shard per batch costs one
 * fsync per shard (fsyncs on one filesystem do not overlap, so about 0.6 ms each here); appending
 * the batch to a journal costs one. Shards are brought up to date by a checkpoint every so many
 * entries, after which the journal generations it covers are deleted.
 *
 * Files: `journal-<generation>.jsonl` in the shard directory. The first line is a header
 * `{"journal":N,"store":"<manifest id>"}`; each later line is one record (docs/STORAGE.md):
 * `["realIp",virtualIp,day]` (assigned, or seen on that UTC day) or
 * `["realIp",virtualIp,day,"reclaimed"]`. A generation is created whole (header written to a temp
 * file, fsynced, renamed) and recorded in the manifest before anything in it is acknowledged, so a
 * journal that is missing, empty or shorter than the manifest says is refused at load.
 */
import { constants } from 'node:fs';
import { open, readFile, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath, TEMP_SUFFIX } from './durable-file.ts';
import { StoreError } from './errors.ts';
import type { ManifestFile } from './manifest.ts';

const JOURNAL_NAME = /^journal-(\d+)\.jsonl$/;

/**
 * Journal files are opened with O_DSYNC: each append's write returns only once its bytes and the
 * file size that makes them readable are on disk, exactly what write + fdatasync gave, in one
 * thread-pool round trip instead of two. Measured with `npm run bench -- --only address`: the
 * relay's event loop is busy with connections while the store commits, and each round trip
 * waited for it (a batch took ~2.7 ms against 0.36 ms for a bare write + fdatasync).
 */
const JOURNAL_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_DSYNC;

/** What a failed append's message says to do. */
const RETRY_HINT = '; check free space and permissions: nothing was acknowledged, the address stays reserved for its real IP and the next request retries';

/** Marks a record that gives an address back (`alphanet store reclaim`). */
export const RECLAIMED = 'reclaimed';

/** One journal record: a mapping assigned or seen on `day`, or reclaimed. Version 1 lines have no day. */
export type JournalEntry = readonly [realIp: string, virtualIp: number, day?: number, kind?: typeof RECLAIMED];

function parseEntry(line: string): JournalEntry | undefined {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!Array.isArray(entry) || entry.length < 2 || entry.length > 4) return undefined;
  const [realIp, virtualIp, day, kind] = entry as unknown[];
  if (typeof realIp !== 'string' || !Number.isInteger(virtualIp)) return undefined;
  if (entry.length >= 3 && !Number.isSafeInteger(day)) return undefined;
  if (entry.length === 4 && kind !== RECLAIMED) return undefined;
  return entry as unknown as JournalEntry;
}

function parseHeader(line: string): { journal?: unknown; store?: unknown } | undefined {
  try {
    const header: unknown = JSON.parse(line);
    return typeof header === 'object' && header !== null && !Array.isArray(header) ? header : undefined;
  } catch {
    return undefined;
  }
}

export class Journal {
  readonly directory: string;
  readonly #manifest: ManifestFile;
  /** Complete records of each generation on disk after the checkpoint (found at load or written since). */
  readonly #counts = new Map<number, number>();
  /** Every generation on disk, covered or not (covered ones are deleted by the next checkpoint). */
  #onDisk = new Set<number>();
  #generation = 0;
  #handle: FileHandle | undefined;
  /** Bytes of the current generation that are acknowledged: a failed append is cut back to this. */
  #bytes = 0;
  #broken = false;

  constructor(directory: string, manifest: ManifestFile) {
    this.directory = directory;
    this.#manifest = manifest;
  }

  #file(generation: number): string {
    return path.join(this.directory, `journal-${String(generation).padStart(6, '0')}.jsonl`);
  }

  /**
   * Every record of every generation after the checkpoint, oldest first; a torn last line (an
   * append a crash cut short, never acknowledged) is dropped. Rejects with ERR_STORE_MISSING when
   * a generation the manifest lists is missing, empty or shorter than recorded.
   */
  async read(): Promise<JournalEntry[]> {
    const manifest = this.#manifest.current;
    const names = await readdir(this.directory);
    const found = names.flatMap((n) => {
      const m = JOURNAL_NAME.exec(n);
      return m ? [Number(m[1])] : [];
    });
    this.#onDisk = new Set(found);
    const expected = Object.keys(manifest.journals).map(Number);
    for (const generation of expected) {
      if (!this.#onDisk.has(generation)) {
        const recorded = manifest.journals[generation];
        throw new StoreError(
          'ERR_STORE_MISSING',
          `${this.#file(generation)} is missing, but ${this.#manifest.path} records it (${recorded === null ? 'the journal being written' : `${recorded} records`}, made since the last checkpoint); ` +
            'starting without it would hand addresses already told to clients to other real IPs. Restore the file from a backup or wherever it was moved (nothing was written)',
        );
      }
    }
    const live = found.filter((g) => g > manifest.checkpoint.journal).sort((a, b) => a - b);
    this.#generation = Math.max(manifest.checkpoint.journal, ...found, ...expected);
    const entries: JournalEntry[] = [];
    for (const generation of live) {
      const file = this.#file(generation);
      const text = await readFile(file, 'utf8');
      const lines = text.split('\n');
      // Text after the last newline is an append a crash cut short: never fsynced, never acknowledged.
      lines.pop();
      let first = 0;
      if (generation > manifest.legacyJournalsThrough) {
        const header = lines.length > 0 ? parseHeader(lines[0]) : undefined;
        if (header === undefined) {
          throw new StoreError(
            'ERR_STORE_MISSING',
            `${file} is ${text.length === 0 ? 'empty' : 'truncated (its header line is gone)'}, but a journal is created whole with its header; it was cut from outside and the records it held are lost to this store. Restore it from a backup (nothing was written)`,
          );
        }
        if (header.journal !== generation || header.store !== manifest.id) {
          throw new StoreError('ERR_STORE_CORRUPT', `${file} belongs to ${header.store !== manifest.id ? 'another store' : `generation ${String(header.journal)}`}; refusing to start rather than overwrite it. Move it back where it came from`);
        }
        first = 1;
      }
      for (let index = first; index < lines.length; index++) {
        const entry = parseEntry(lines[index]);
        if (entry === undefined) {
          throw new StoreError('ERR_STORE_CORRUPT', `${file} line ${index + 1} is not a journal entry; refusing to start rather than overwrite it`);
        }
        entries.push(entry);
      }
      const count = lines.length - first;
      const recorded = manifest.journals[generation];
      if (recorded !== undefined && recorded !== null && count < recorded) {
        throw new StoreError(
          'ERR_STORE_MISSING',
          `${file} holds ${count} records, but ${this.#manifest.path} recorded ${recorded} when it was closed: it was truncated, and the addresses in the lost records would be handed to other real IPs. Restore it from a backup (nothing was written)`,
        );
      }
      this.#counts.set(generation, count);
    }
    return entries;
  }

  /** Generations read at load (for a version-1 store's upgrade), oldest first, with their record counts. */
  loadedCounts(): Map<number, number> {
    return new Map(this.#counts);
  }

  /** Appends and fsyncs; the entries are durable when this resolves. */
  async append(entries: readonly JournalEntry[]): Promise<void> {
    try {
      if (this.#handle === undefined || this.#broken) await this.#startGeneration();
    } catch (error) {
      throw new StoreError('ERR_STORE_WRITE', `cannot start a journal in ${this.directory}: ${(error as Error).message}${RETRY_HINT}`, { cause: error });
    }
    const bytes = Buffer.from(entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
    try {
      // O_DSYNC (JOURNAL_FLAGS): durable when the write returns, as write + fdatasync was.
      const { bytesWritten } = await this.#handle!.write(bytes);
      // A short write (a full disk) is not durable: fail it.
      if (bytesWritten !== bytes.length) throw new Error(`short write: ${bytesWritten} of ${bytes.length} bytes`);
    } catch (error) {
      // Cut the partial line off and keep this generation: a failed batch leaves nothing behind.
      // Only when that fails too does the next batch start a fresh generation.
      await this.#handle!.truncate(this.#bytes).catch(() => {
        this.#broken = true;
      });
      throw new StoreError('ERR_STORE_WRITE', `cannot append to ${this.#file(this.#generation)}: ${(error as Error).message}${RETRY_HINT}`, { cause: error });
    }
    this.#bytes += bytes.length;
    this.#counts.set(this.#generation, (this.#counts.get(this.#generation) ?? 0) + entries.length);
  }

  /**
   * Creates the next generation whole, then records it in the manifest (with the final counts of
   * the generations before it), and only then appends to it. Any step failing removes what it made.
   */
  async #startGeneration(): Promise<void> {
    const old = this.#handle;
    this.#handle = undefined;
    await old?.close().catch(() => undefined);
    const generation = this.#generation + 1;
    const file = this.#file(generation);
    const temp = file + TEMP_SUFFIX;
    const header = `${JSON.stringify({ journal: generation, store: this.#manifest.current.id })}\n`;
    try {
      const handle = await open(temp, 'w', 0o644);
      try {
        await handle.writeFile(header, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file);
      // The new file's directory entry must be durable before anything in it is acknowledged.
      await fsyncPath(this.directory);
      await this.#manifest.update((m) => {
        for (const [g, count] of this.#counts) if (g > m.checkpoint.journal) m.journals[g] = count;
        m.journals[generation] = null;
        if (m.legacyJournalsThrough === Number.MAX_SAFE_INTEGER) m.legacyJournalsThrough = generation - 1;
      });
    } catch (error) {
      // Not recorded, so nobody expects it: leave no file behind.
      await rm(temp, { force: true }).catch(() => undefined);
      await rm(file, { force: true }).catch(() => undefined);
      throw error;
    }
    this.#generation = generation;
    this.#onDisk.add(generation);
    this.#counts.set(generation, 0);
    this.#handle = await open(file, JOURNAL_FLAGS);
    this.#bytes = Buffer.byteLength(header);
    this.#broken = false;
  }

  /**
   * Starts a new generation for later appends and returns a function that, once the checkpoint's
   * shard files are durable, records the checkpoint (with each shard's entry count) in the
   * manifest and deletes every generation it covers. `final` (at close) covers every generation
   * and starts none.
   */
  async rotate(final = false): Promise<(counts: number[]) => Promise<void>> {
    if (final) await this.close();
    else await this.#startGeneration();
    const through = final ? this.#generation : this.#generation - 1;
    return async (counts) => {
      await this.#manifest.update((m) => {
        m.checkpoint = { journal: through, counts };
        for (const g of Object.keys(m.journals)) if (Number(g) <= through) delete m.journals[g];
      });
      const covered = [...this.#onDisk].filter((g) => g <= through);
      await Promise.all(covered.map((g) => rm(this.#file(g), { force: true })));
      for (const g of covered) {
        this.#onDisk.delete(g);
        this.#counts.delete(g);
      }
    };
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }
}
