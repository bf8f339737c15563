/**
 * Trust on first use (docs/SECURITY.md "Pins"): the identity key first seen at each virtual IP,
 * kept in the file `known-peers` beside the identity, one `VIRTUAL_IP KEY` line each (KEY as
 * unpadded base64url). A different key at a pinned address is refused until the pin is
 * forgotten (`alphanet pins forget VIRTUAL_IP`). Every change is written to a temporary file,
 * fsynced and renamed over the old one, so a crash leaves the old pins or the new, never half.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ClientError } from '../errors.ts';

export const KNOWN_PEERS_FILE_NAME = 'known-peers';

/**
 * The pins file exists but cannot be read (permissions, a directory in its place): nothing can be
 * compared, so a connection that needs a pin is refused rather than trusted as new.
 */
export class PinsUnreadableError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_IDENTITY', message, options);
  }
}

/** What a pin check found. */
export type PinCheck = { status: 'new' } | { status: 'match' } | { status: 'changed'; pinned: string };

/** The pins of one file. Reads the file on each check, so two processes see each other's pins. */
export class KnownPeers {
  readonly path: string;
  #queue: Promise<unknown> = Promise.resolve();
  /**
   * The key this process last found pinned (or pinned) per virtual IP. A connection to a peer
   * already checked answers from here instead of reading the file: reading it at both ends of
   * every connect doubled a connect's CPU (docs/BENCHMARKS.md). Any other key still goes to the
   * file, so a changed key is refused as before; a pin forgotten by another process (`alphanet
   * pins forget`) while this one runs is trusted by this one until it restarts, as it trusted it
   * when it checked.
   */
  #checked = new Map<string, string>();

  constructor(file: string) {
    this.path = path.resolve(file);
  }

  /** Every pin, by virtual IP. */
  async list(): Promise<Map<string, string>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new PinsUnreadableError(`cannot read the pins file ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    const pins = new Map<string, string>();
    for (const line of text.split('\n')) {
      const [ip, key] = line.trim().split(/\s+/);
      if (ip && key && !ip.startsWith('#')) pins.set(ip, key);
    }
    return pins;
  }

  /**
   * Compares `key` with the pin of `virtualIp` without pinning a first key: what a connector asks
   * before its handshake proved the key (it pins with {@link check} once it has).
   */
  async compare(virtualIp: string, key: string): Promise<PinCheck> {
    if (this.#checked.get(virtualIp) === key) return { status: 'match' };
    const pinned = (await this.list()).get(virtualIp);
    if (pinned === undefined) return { status: 'new' };
    return pinned === key ? { status: 'match' } : { status: 'changed', pinned };
  }

  /** Compares `key` with the pin of `virtualIp`; a first key is pinned. */
  check(virtualIp: string, key: string): Promise<PinCheck> {
    if (this.#checked.get(virtualIp) === key) return Promise.resolve({ status: 'match' });
    return this.#serial(async () => {
      const pins = await this.list();
      const pinned = pins.get(virtualIp);
      if (pinned === key) {
        this.#checked.set(virtualIp, key);
        return { status: 'match' };
      }
      if (pinned !== undefined) return { status: 'changed', pinned };
      pins.set(virtualIp, key);
      await this.#write(pins);
      this.#checked.set(virtualIp, key);
      return { status: 'new' };
    });
  }

  /** Forgets the pin of `virtualIp`; true if there was one. */
  forget(virtualIp: string): Promise<boolean> {
    this.#checked.delete(virtualIp);
    return this.#serial(async () => {
      const pins = await this.list();
      if (!pins.delete(virtualIp)) return false;
      await this.#write(pins);
      return true;
    });
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #write(pins: Map<string, string>): Promise<void> {
    const text = [...pins].map(([ip, key]) => `${ip} ${key}\n`).join('');
    const temp = `${this.path}.${randomUUID()}.tmp`;
    try {
      await mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 });
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, this.path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw new ClientError('ERR_IDENTITY', `cannot write ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }
}
