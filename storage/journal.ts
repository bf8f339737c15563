/**
 * The write-ahead journal in front of the shards. Rewriting every dirty shard per batch costs one
 * fsync per shard (fsyncs on one filesystem do not overlap, so about 0.6 ms each here); appending
 * the batch to a journal costs one. Shards are brought up to date by a checkpoint every so many
 * entries, after which the journal generations it covers are deleted.
 *
 * Files: `journal-<generation>.jsonl` in the shard directory, one `["realIp",virtualIp]` per line.
 * A store appends only to a generation it created itself, so a crash's torn last line stays in an
 * older generation, where it is skipped (it was never acknowledged) and later deleted.
 */
import { constants } from 'node:fs';
import { open, readFile, readdir, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncPath } from './durable-file.ts';
import { StoreError } from './errors.ts';

const JOURNAL_NAME = /^journal-(\d+)\.jsonl$/;

/**
 * Journal files are opened with O_DSYNC: each append's write returns only once its bytes and the
 * file size that makes them readable are on disk, exactly what write + fdatasync gave, in one
 * thread-pool round trip instead of two. Measured with `npm run bench -- --only address`: the
 * relay's event loop is busy with connections while the store commits, and each round trip
 * waited for it (a batch took ~2.7 ms against 0.36 ms for a bare write + fdatasync).
 */
const JOURNAL_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC;

/** One journaled mapping. */
export type JournalEntry = readonly [realIp: string, virtualIp: number];

export class Journal {
  readonly directory: string;
  /** Generations found at load or written since, oldest first. */
  #generations: number[] = [];
  #generation = 0;
  #handle: FileHandle | undefined;
  #broken = false;

  constructor(directory: string) {
    this.directory = directory;
  }

  #file(generation: number): string {
    return path.join(this.directory, `journal-${String(generation).padStart(6, '0')}.jsonl`);
  }

  /** Every entry of every generation on disk, oldest first; a torn last line is dropped. */
  async read(): Promise<JournalEntry[]> {
    const names = await readdir(this.directory);
    this.#generations = names.flatMap((n) => {
      const m = JOURNAL_NAME.exec(n);
      return m ? [Number(m[1])] : [];
    });
    this.#generations.sort((a, b) => a - b);
    this.#generation = this.#generations.at(-1) ?? 0;
    const entries: JournalEntry[] = [];
    for (const generation of this.#generations) {
      const file = this.#file(generation);
      const lines = (await readFile(file, 'utf8')).split('\n');
      // Text after the last newline is an append a crash cut short: never fsynced, never acknowledged.
      lines.pop();
      lines.forEach((line, index) => {
        let entry: unknown;
        try {
          entry = JSON.parse(line);
        } catch {
          entry = undefined;
        }
        if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || !Number.isInteger(entry[1])) {
          throw new StoreError('ERR_STORE_CORRUPT', `${file} line ${index + 1} is not a journal entry; refusing to start rather than overwrite it`);
        }
        entries.push([entry[0], entry[1] as number]);
      });
    }
    return entries;
  }

  /** Appends and fsyncs; the entries are durable when this resolves. */
  async append(entries: readonly JournalEntry[]): Promise<void> {
    try {
      if (this.#handle === undefined || this.#broken) await this.#startGeneration();
      const bytes = Buffer.from(entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
      // O_DSYNC (JOURNAL_FLAGS): durable when the write returns, as write + fdatasync was.
      const { bytesWritten } = await this.#handle!.write(bytes);
      // A short write (a full disk) is not durable: fail it, and the torn tail is dropped at load.
      if (bytesWritten !== bytes.length) throw new Error(`short write: ${bytesWritten} of ${bytes.length} bytes`);
    } catch (error) {
      // A failed append may have left a partial line; carry on in a fresh generation.
      this.#broken = true;
      throw new StoreError('ERR_STORE_WRITE', `cannot append to the journal in ${this.directory}: ${(error as Error).message}`, { cause: error });
    }
  }

  async #startGeneration(): Promise<void> {
    const old = this.#handle;
    this.#handle = undefined;
    await old?.close().catch(() => undefined);
    const generation = this.#generation + 1;
    const handle = await open(this.#file(generation), JOURNAL_FLAGS, 0o644);
    this.#generation = generation;
    this.#generations.push(generation);
    this.#handle = handle;
    this.#broken = false;
    // The new file's directory entry must be durable before anything in it is acknowledged.
    await fsyncPath(this.directory);
  }

  /**
   * Starts a new generation for later appends and returns a function deleting every older one,
   * to be called once a checkpoint covering them is durable. `final` (at close) covers every
   * generation and starts none.
   */
  async rotate(final = false): Promise<() => Promise<void>> {
    if (final) {
      await this.close();
      this.#generation++;
    } else {
      await this.#startGeneration();
    }
    const covered = this.#generations.filter((g) => g < this.#generation);
    return async () => {
      await Promise.all(covered.map((g) => rm(this.#file(g), { force: true })));
      this.#generations = this.#generations.filter((g) => !covered.includes(g));
    };
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }
}
