/**
 * A lowdb adapter that survives power loss. lowdb's own file adapters write a temp file and
 * rename it (atomic against a crashing process) but never fsync, so after a power cut the rename
 * can be on disk while the data is not, leaving an empty or torn file. Here the temp file is
 * fsynced before the rename and the directory after it, so a reader finds the old file or the
 * new one, whole.
 */
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { StoreError } from './errors.ts';

/** Suffix of in-flight temp files; leftovers from a crash are removed when a store opens. */
export const TEMP_SUFFIX = '.tmp';

/** Turns a value into file text. Supplied by the store so it can keep serialisations apart in time. */
export type Serialize = (data: unknown) => Promise<string>;

export interface DurableJsonFileOptions<T> {
  /** Checks parsed content; returns an error message when it is not a valid file. */
  validate?: (data: unknown) => string | undefined;
  /** @default async JSON.stringify */
  serialize?: Serialize;
  /**
   * Fsync the directory after each rename. A store writing many files in one batch turns this off
   * and syncs the directory once per batch.
   * @default true
   */
  syncDirectory?: boolean;
  /** Narrows parsed content to T once validated. @default identity */
  revive?: (data: unknown) => T;
}

/** Opens a file or directory, fsyncs it, closes it. */
export async function fsyncPath(target: string, flags = 'r'): Promise<void> {
  const handle = await open(target, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * A JSON file read and written through lowdb with fsync durability. Content that is not valid JSON
 * (or fails `validate`) rejects reads with ERR_STORE_CORRUPT naming the file, and the file is left
 * as it is.
 */
export class DurableJsonFile<T> implements Adapter<T> {
  readonly filename: string;
  readonly #options: DurableJsonFileOptions<T>;
  /** Whether the last read found the file (false: it did not exist). */
  found = false;

  constructor(filename: string, options: DurableJsonFileOptions<T> = {}) {
    this.filename = filename;
    this.#options = options;
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.filename, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        this.found = false;
        return null;
      }
      throw new StoreError('ERR_STORE_READ', `cannot read ${this.filename}: ${(error as Error).message}`, { cause: error });
    }
    this.found = true;
    // Every write is fsynced before its rename, so no crash leaves an empty file: something emptied it.
    if (text.trim() === '') {
      throw new StoreError(
        'ERR_STORE_MISSING',
        `${this.filename} is empty, but the store only ever renames complete, fsynced files into place, so it was emptied from outside; restore it from a backup (nothing was written)`,
      );
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new StoreError('ERR_STORE_CORRUPT', `${this.filename} is not valid JSON (${(error as Error).message}); refusing to start rather than overwrite it`, { cause: error });
    }
    const problem = this.#options.validate?.(data);
    if (problem !== undefined) {
      throw new StoreError('ERR_STORE_CORRUPT', `${this.filename} is not a valid store file: ${problem}; refusing to start rather than overwrite it`);
    }
    return this.#options.revive ? this.#options.revive(data) : (data as T);
  }

  async write(data: T): Promise<void> {
    const text = this.#options.serialize ? await this.#options.serialize(data) : JSON.stringify(data);
    const temp = this.filename + TEMP_SUFFIX;
    try {
      const handle = await open(temp, 'w', 0o644);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.filename);
      if (this.#options.syncDirectory ?? true) await fsyncPath(path.dirname(this.filename));
    } catch (error) {
      throw new StoreError('ERR_STORE_WRITE', `cannot write ${this.filename}: ${(error as Error).message}`, { cause: error });
    }
  }
}
