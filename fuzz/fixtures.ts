/**
 * Regression fixtures: every failing case `npm run fuzz` finds is written to fuzz/fixtures/ as
 * JSON (the property, the seed and path that found it, the shrunk counterexample, the error),
 * and specs/fuzz/fixtures.spec.ts replays each one in `npm test`. A fixture that documents a bug
 * owned elsewhere and not fixed yet carries `"ci": false` and a note saying whose it is.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type fc from 'fast-check';
import { fromJsonValue, toJsonValue } from './bytes.ts';
import { DECODER_PROPERTIES, type DecoderProperty, type DecoderPropertyName } from './decoder-properties.ts';
import type { CommandData } from './relay-command-data.ts';
import { HarnessPool, RelayCommand, runSequence } from './relay-property.ts';

export const FIXTURE_DIR = fileURLToPath(new URL('./fixtures/', import.meta.url));
/** The property name of the stateful relay model in fixtures and reports. */
export const MODEL_PROPERTY = 'relay.model';

export interface Fixture {
  /** A key of DECODER_PROPERTIES, or MODEL_PROPERTY. */
  property: string;
  claim: string;
  seed: number;
  /** fast-check's counterexample path: `fc.check(p, { seed, path })` replays the same case. */
  path: string | null;
  /** The shrunk counterexample: the property's value, or the model's command list. */
  counterexample: unknown;
  /** What failed, as the property said it. */
  error: string;
  /** ISO time it was found. */
  found: string;
  /** Replayed by `npm test`. False only for a known bug owned elsewhere (see note). */
  ci: boolean;
  note?: string;
}

/** The model's commands as data, from fast-check's command sequence (only those that ran). */
export function commandsOf(sequence: unknown): CommandData[] {
  const out: CommandData[] = [];
  for (const item of sequence as Iterable<unknown>) {
    const wrapper = item as { cmd?: unknown; hasRan?: boolean };
    const cmd = (wrapper.cmd ?? item) as RelayCommand;
    if (wrapper.hasRan === false) continue;
    out.push(cmd.data);
  }
  return out;
}

/**
 * Writes a fixture for a failed run; returns its file path. Identical finds share one file, and
 * a file already there keeps its triage (ci, note, found). A failure of a pending property is
 * kept out of CI with the pending note, in one fixture per property.
 */
export function saveFixture(property: string, claim: string, details: fc.RunDetails<unknown[]>, pending?: string): string {
  if (pending !== undefined) {
    // One fixture documents a pending property's known failure; each run need not add another.
    const known = loadFixtures().find(({ fixture }) => fixture.property === property && !fixture.ci);
    if (known !== undefined) return join(FIXTURE_DIR, known.file);
  }
  const value = property === MODEL_PROPERTY ? commandsOf(details.counterexample![0]) : details.counterexample![0];
  const counterexample = toJsonValue(value);
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  const fixture: Fixture = {
    property,
    claim,
    seed: details.seed,
    path: details.counterexamplePath,
    counterexample,
    error,
    found: new Date().toISOString(),
    ci: pending === undefined,
    ...(pending === undefined ? {} : { note: `pending: ${pending}` }),
  };
  const hash = createHash('sha256').update(JSON.stringify([property, counterexample])).digest('hex').slice(0, 10);
  mkdirSync(FIXTURE_DIR, { recursive: true });
  const file = join(FIXTURE_DIR, `${property}-${hash}.json`);
  if (existsSync(file)) {
    const known = JSON.parse(readFileSync(file, 'utf8')) as Fixture;
    Object.assign(fixture, { found: known.found, ci: known.ci, note: known.note });
  }
  writeFileSync(file, `${JSON.stringify(fixture, null, 2)}\n`);
  return file;
}

export function loadFixtures(): { file: string; fixture: Fixture }[] {
  let names: string[];
  try {
    names = readdirSync(FIXTURE_DIR).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return names.map((name) => ({ file: name, fixture: JSON.parse(readFileSync(join(FIXTURE_DIR, name), 'utf8')) as Fixture }));
}

/** Replays a fixture's counterexample exactly as it was found; throws what the property throws. */
export async function replayFixture(fixture: Fixture, pool: HarnessPool): Promise<void> {
  const value = fromJsonValue(fixture.counterexample);
  if (fixture.property === MODEL_PROPERTY) {
    await runSequence(pool, (value as CommandData[]).map((d) => new RelayCommand(d)));
    return;
  }
  const property = DECODER_PROPERTIES[fixture.property as DecoderPropertyName] as DecoderProperty<unknown> | undefined;
  if (property === undefined) throw new Error(`fixture names an unknown property ${fixture.property}`);
  property.check(value);
}
