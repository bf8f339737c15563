/**
 * The store's exclusive lock: one writer (a relay, or `alphanet store reclaim`) at a time.
 *
 * An operating-system lock rather than a pid file: the kernel releases it when the holder exits,
 * however it exits (SIGKILL, power cut, OOM), so there is no stale-lock guesswork (a pid file
 * must decide whether a pid is dead or reused, and two starters can both judge it stale and both
 * take over). fs-native-extensions (Holepunch, prebuilt binaries in the package) locks with
 * `F_OFD_SETLK` on Linux and `flock` on macOS: both are per open file, so a second open in the
 * same process is refused too, and a file descriptor closed elsewhere in the process does not
 * drop the lock (as POSIX `fcntl` record locks would).
 *
 * The lock file also holds who took it (pid, host, command, since when), so a refusal can name
 * the holder. It is removed on a clean close; after a crash it stays, unlocked, and the next
 * opener simply takes it.
 */
import { createRequire } from 'node:module';
import { open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { StoreError } from './errors.ts';

/** True when the exclusive lock on the whole file was granted; false when another open file holds it. */
type TryLock = (fd: number, options?: { shared?: boolean }) => boolean;
let tryLockOnce: TryLock | undefined;

/**
 * Loaded at the first lock, not at import: a platform without a prebuilt binary then fails only
 * where a lock is needed (a writer), with a message, while memory stores and readers still work.
 */
function loadTryLock(): TryLock {
  if (tryLockOnce === undefined) {
    try {
      tryLockOnce = (createRequire(import.meta.url)('fs-native-extensions') as { tryLock: TryLock }).tryLock;
    } catch (error) {
      throw new StoreError('ERR_STORE_WRITE', `cannot load fs-native-extensions, which locks the store: ${(error as Error).message}`, { cause: error });
    }
  }
  return tryLockOnce;
}

/** The part of Deno's file API the lock needs (Deno 2.7+). */
interface DenoLockFile {
  tryLockSync(exclusive?: boolean): boolean;
  close(): void;
}
interface DenoFs {
  open(path: string, options: { read?: boolean; write?: boolean }): Promise<DenoLockFile>;
}

/**
 * Under Deno the addon cannot load (it links against Node's libuv), so the lock is Deno's own
 * `FsFile.tryLockSync`: flock(2), also per open file and released by the kernel when the holder
 * exits. flock and Node's OFD locks do not see each other on Linux, so a Node relay and a Deno
 * relay on one store are not kept apart (docs/STORAGE.md says so); two of either kind are.
 */
const denoFs = (globalThis as { Deno?: DenoFs }).Deno;

/**
 * Tries to lock `path` (already opened as `handle`) without waiting. Resolves to a release
 * function when granted, undefined when another open file holds it.
 */
async function tryLockFile(path: string, handle: FileHandle, shared: boolean): Promise<(() => void) | undefined> {
  if (denoFs !== undefined) {
    const file = await denoFs.open(path, { read: true, write: !shared });
    let granted = false;
    try {
      granted = file.tryLockSync(!shared);
    } finally {
      if (!granted) file.close();
    }
    return granted ? () => file.close() : undefined;
  }
  // The lock goes with the descriptor: closing `handle` releases it.
  return loadTryLock()(handle.fd, { shared }) ? () => undefined : undefined;
}

/** Suffix of the lock file beside the manifest. */
export const LOCK_SUFFIX = '.lock';
/** Longest command line kept in the lock file. */
const MAX_COMMAND_CHARS = 200;
/** Attempts when the lock file is replaced under us (a holder removing it as we open it). */
const MAX_ATTEMPTS = 5;

/** What the lock file says about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** The holder's command line, cut to 200 characters. */
  command: string;
}

/** A held lock. */
export interface StoreLock {
  readonly path: string;
  /** Removes the lock file and releases the lock. Idempotent. */
  release(): Promise<void>;
}

/**
 * Who holds the store's lock, without taking it or creating anything: undefined when nobody does
 * (no lock file, or one a crash left unlocked). For `alphanet store stats`.
 */
export async function probeStoreLock(manifestPath: string): Promise<string | undefined> {
  const lockPath = manifestPath + LOCK_SUFFIX;
  let handle: FileHandle;
  try {
    handle = await open(lockPath, 'r');
  } catch {
    return undefined;
  }
  try {
    // A shared lock on a read-only descriptor conflicts only with a writer's exclusive one.
    const release = await tryLockFile(lockPath, handle, true);
    if (release !== undefined) {
      release();
      return undefined;
    }
  } finally {
    await handle.close();
  }
  return describe(await readHolder(lockPath));
}

export function describe(holder: LockHolder | undefined): string {
  if (holder === undefined) return 'another process (it has not written its details yet, or is exiting)';
  return `pid ${holder.pid} on ${holder.host} (${holder.command}), holding it since ${holder.since}`;
}

async function readHolder(lockPath: string): Promise<LockHolder | undefined> {
  try {
    const data = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<LockHolder>;
    if (typeof data.pid !== 'number') return undefined;
    return { pid: data.pid, host: String(data.host), since: String(data.since), command: String(data.command) };
  } catch {
    return undefined;
  }
}

/**
 * Takes the lock of the store whose manifest is `manifestPath`, or rejects with ERR_STORE_LOCKED
 * naming the holder and how to go on. Never waits: a second relay is refused at once.
 */
export async function acquireStoreLock(manifestPath: string): Promise<StoreLock> {
  const lockPath = manifestPath + LOCK_SUFFIX;
  for (let attempt = 1; ; attempt++) {
    let handle: FileHandle;
    try {
      handle = await open(lockPath, 'a+', 0o644);
    } catch (error) {
      throw new StoreError('ERR_STORE_WRITE', `cannot open the lock file ${lockPath}: ${(error as Error).message}`, { cause: error });
    }
    let unlock: (() => void) | undefined;
    try {
      unlock = await tryLockFile(lockPath, handle, false);
    } catch (error) {
      await handle.close();
      throw new StoreError('ERR_STORE_WRITE', `cannot lock ${lockPath}: ${(error as Error).message}`, { cause: error });
    }
    if (unlock === undefined) {
      await handle.close();
      const holder = await readHolder(lockPath);
      throw new StoreError(
        'ERR_STORE_LOCKED',
        `the address store ${manifestPath} is in use by ${describe(holder)}; lock file ${lockPath}. ` +
          'Only one relay can use a store at a time, or two clients would be told the same address: stop that process first, ' +
          'or give this one its own --db. The lock is released by the operating system when its holder exits, even after a crash, so there is nothing to delete.',
      );
    }
    // The holder of the lock we just opened may have removed the file between our open and our
    // lock (a clean close): then we hold a lock on a file nobody else will ever open. Retry.
    const same = await Promise.all([handle.stat(), stat(lockPath).catch(() => undefined)]).then(([a, b]) => b !== undefined && a.ino === b.ino && a.dev === b.dev);
    if (!same) {
      unlock();
      await handle.close();
      if (attempt < MAX_ATTEMPTS) continue;
      throw new StoreError('ERR_STORE_LOCKED', `the lock file ${lockPath} keeps being replaced; another process is starting and stopping on this store`);
    }
    const holder: LockHolder = {
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
      command: process.argv.slice(1).join(' ').slice(0, MAX_COMMAND_CHARS),
    };
    await handle.truncate(0);
    await handle.write(JSON.stringify(holder) + '\n', 0);
    let released = false;
    return {
      path: lockPath,
      release: async () => {
        if (released) return;
        released = true;
        // Removed while still held, so nobody can lock the old file after we let go.
        await rm(lockPath, { force: true }).catch(() => undefined);
        unlock();
        await handle.close();
      },
    };
  }
}
