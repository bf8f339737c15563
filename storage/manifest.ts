/**
 * The `--db` file: what the store is (subnet, shard count) and what must be on disk, so that a
 * file that goes missing is refused at open instead of silently handing its addresses to others.
 *
 * It records, at each checkpoint, how many entries each shard file held, and every journal
 * generation written since with its entry count once closed. It is rewritten (temp + fsync +
 * rename + fsync) when a checkpoint completes and when a journal generation starts, before
 * anything in that generation is acknowledged: rare events (every 20,000 entries, and at a
 * relay's first allocation), never per allocation.
 */
import { randomUUID } from 'node:crypto';
import { DurableJsonFile } from './durable-file.ts';
import { DEFAULT_IDENTITY_MODE, IDENTITY_MODES, type IdentityMode } from './identity-mode.ts';

/** The manifest format this code writes. Version 1 (no integrity record) is read and upgraded. */
export const MANIFEST_VERSION = 2;
export const MAX_SHARD_COUNT = 65_536;

export interface Manifest {
  version: 2;
  /** Random, written into every journal header, so a journal from another store is refused. */
  id: string;
  subnet: string;
  shards: number;
  /** Entries with no recorded last-seen day count as seen on this day (when the store was made or upgraded). */
  baselineDay: number;
  checkpoint: {
    /** Journal generations up to this one are in the shard files. */
    journal: number;
    /** Entries in each shard file when the checkpoint completed (a shard file may hold more after a crash, never fewer). */
    counts: number[];
  };
  /** Generations after the checkpoint → entries they held when closed; null while being written. */
  journals: Record<string, number | null>;
  /** Generations up to this one were written by version 1, without a header line. */
  legacyJournalsThrough: number;
  /** What entries are keyed by (docs/STORAGE.md "Identity mode"); absent in stores made before modes: `ip`. */
  identityMode?: IdentityMode;
}

/** Version 1, before integrity records. */
interface LegacyManifest {
  version: 1;
  subnet: string;
  shards: number;
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** Why `data` is not a manifest, or undefined when it is one (of either version). */
export function validateManifest(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'expected an object';
  const m = data as Record<string, unknown>;
  if (m.version !== 1 && m.version !== MANIFEST_VERSION) return `unsupported version ${JSON.stringify(m.version)} (expected ${MANIFEST_VERSION})`;
  if (typeof m.subnet !== 'string') return 'subnet must be a string';
  if (typeof m.shards !== 'number' || !Number.isInteger(m.shards) || m.shards < 1 || m.shards > MAX_SHARD_COUNT) {
    return `shards must be an integer 1..${MAX_SHARD_COUNT}`;
  }
  if (m.version === 1) return undefined;
  if (m.identityMode !== undefined && !IDENTITY_MODES.includes(m.identityMode as IdentityMode)) return 'identityMode must be "ip" or "key"';
  if (typeof m.id !== 'string' || m.id === '') return 'id must be a string';
  if (!isCount(m.baselineDay) || !isCount(m.legacyJournalsThrough)) return 'baselineDay and legacyJournalsThrough must be counts';
  const checkpoint = m.checkpoint as Record<string, unknown> | null;
  if (typeof checkpoint !== 'object' || checkpoint === null || !isCount(checkpoint.journal)) return 'checkpoint.journal must be a count';
  const counts = checkpoint.counts;
  if (!Array.isArray(counts) || !counts.every(isCount)) return 'checkpoint.counts must be a list of counts';
  if (counts.length !== m.shards) {
    return (
      `"shards" is ${m.shards} but the last checkpoint recorded ${counts.length} shard files. A store's shard count never changes ` +
      `(a real IP's shard is a hash modulo it, so another count would lose every entry); put back "shards": ${counts.length}`
    );
  }
  const journals = m.journals;
  if (typeof journals !== 'object' || journals === null || Array.isArray(journals)) return 'journals must be an object';
  for (const [generation, count] of Object.entries(journals)) {
    if (!/^\d+$/.test(generation) || Number(generation) <= checkpoint.journal) return `journal generation ${generation} is not after the checkpoint`;
    if (count !== null && !isCount(count)) return `journal generation ${generation} has a bad count`;
  }
  return undefined;
}

/** A new store's manifest. */
export function newManifest(subnet: string, shards: number, today: number, identityMode: IdentityMode = DEFAULT_IDENTITY_MODE): Manifest {
  return {
    identityMode,
    version: MANIFEST_VERSION,
    id: randomUUID(),
    subnet,
    shards,
    baselineDay: today,
    checkpoint: { journal: 0, counts: new Array<number>(shards).fill(0) },
    journals: {},
    legacyJournalsThrough: 0,
  };
}

/**
 * A version-1 manifest as version 2, in memory only: it is written at the first write, with the
 * counts found at load (`checkpoint.counts` and journals are filled in by the load).
 */
export function upgradeManifest(legacy: LegacyManifest, today: number): Manifest {
  return { ...newManifest(legacy.subnet, legacy.shards, today), legacyJournalsThrough: Number.MAX_SAFE_INTEGER };
}

/** The manifest file and its current content; every change is written durably, one at a time. */
export class ManifestFile {
  readonly path: string;
  readonly #file: DurableJsonFile<Manifest | LegacyManifest>;
  #current: Manifest | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(manifestPath: string) {
    this.path = manifestPath;
    this.#file = new DurableJsonFile<Manifest | LegacyManifest>(manifestPath, { validate: validateManifest });
  }

  /** The manifest on disk, or null when there is none. Rejects with ERR_STORE_CORRUPT/ERR_STORE_MISSING. */
  read(): Promise<Manifest | LegacyManifest | null> {
    return this.#file.read();
  }

  get current(): Manifest {
    if (this.#current === undefined) throw new Error('manifest not loaded');
    return this.#current;
  }

  /** Sets the content without writing it (at load; the next update writes it). */
  adopt(manifest: Manifest): void {
    this.#current = manifest;
  }

  /** Applies `change` to a copy of the current content and writes it; the copy becomes current once durable. */
  update(change: (manifest: Manifest) => void): Promise<void> {
    const run = this.#queue.then(async () => {
      const next = structuredClone(this.current);
      change(next);
      await this.#file.write(next);
      this.#current = next;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
