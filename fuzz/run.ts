/**
 * `npm run fuzz`: the decoder properties and the stateful relay model, for a number of cases
 * (default 1,000,000 in all) or until a time bound, whichever comes first. Prints cases, time
 * and cases/s per property and in total; every failure is shrunk and written as a fixture in
 * fuzz/fixtures/ (replayed by `npm test`). Exit status 1 when anything failed, apart from
 * properties marked pending (work asked for elsewhere), which are reported as known failures.
 *
 *   npm run fuzz -- --cases 200000 --seed 42 --max-seconds 120
 *   npm run fuzz -- --only model --model-cases 2000
 */
import { Command, InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import { DECODER_PROPERTIES, decoderProperty, type DecoderPropertyName } from './decoder-properties.ts';
import { MODEL_PROPERTY, saveFixture } from './fixtures.ts';
import { HarnessPool, relayModelProperty } from './relay-property.ts';

/** Default total cases across decoder and model. */
export const DEFAULT_CASES = 1_000_000;
/** Default share of the cases that are model cases (each is a command sequence over TCP). */
export const DEFAULT_MODEL_SHARE = 0.01;
/** Default time bound of a whole run. */
export const DEFAULT_MAX_SECONDS = 3_600;
/** The model gets this many decoder properties' worth of the time bound. */
const MODEL_TIME_WEIGHT = 3;

function count(text: string): number {
  const n = Number(text.replaceAll('_', ''));
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const program = new Command('fuzz')
  .description('fuzz the frame decoders, the codec and the relay (against a model, over loopback)')
  .option('--cases <n>', 'total cases, decoder and model together', count, DEFAULT_CASES)
  .option('--model-cases <n>', `model cases (default: ${DEFAULT_MODEL_SHARE * 100}% of --cases)`, count)
  .option('--seed <n>', 'seed of the first property; property i uses seed + i (default: random)', count)
  .option('--max-seconds <n>', 'time bound of the whole run', count, DEFAULT_MAX_SECONDS)
  .option('--only <part>', "run only 'decoder' or 'model'")
  .option('--property <name>', 'run only this decoder property')
  .option('--no-fixtures', 'do not write fixtures for failures')
  .parse();

const opts = program.opts<{
  cases: number;
  modelCases?: number;
  seed?: number;
  maxSeconds: number;
  only?: string;
  property?: string;
  fixtures: boolean;
}>();

if (opts.only !== undefined && opts.only !== 'decoder' && opts.only !== 'model') program.error("--only takes 'decoder' or 'model'");
if (opts.property !== undefined && !(opts.property in DECODER_PROPERTIES)) {
  program.error(`unknown property ${opts.property}; one of ${Object.keys(DECODER_PROPERTIES).join(', ')}`);
}

const seed = opts.seed ?? Math.floor(Math.random() * 0x7fffffff);
const runDecoder = opts.only !== 'model';
const runModel = opts.only !== 'decoder' && opts.property === undefined;
const modelCases = runModel ? (opts.modelCases ?? (runDecoder ? Math.round(opts.cases * DEFAULT_MODEL_SHARE) : opts.cases)) : 0;
const isPending = (name: DecoderPropertyName) => 'pending' in DECODER_PROPERTIES[name];
// Pending properties first: one that fails at once leaves its cases to the others.
const decoderNames = (runDecoder ? (opts.property !== undefined ? [opts.property] : Object.keys(DECODER_PROPERTIES)) : [])
  .map((name) => name as DecoderPropertyName)
  .sort((a, b) => Number(isPending(b)) - Number(isPending(a)));
let decoderCases = runDecoder ? Math.max(0, opts.cases - modelCases) : 0;
const deadline = Date.now() + opts.maxSeconds * 1000;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `alphanet fuzz: seed ${seed}, ${fmt(decoderCases + modelCases)} cases (${fmt(decoderCases)} decoder, ${fmt(modelCases)} model), at most ${fmt(opts.maxSeconds)} s`,
);

interface Line {
  name: string;
  cases: number;
  ms: number;
  failed: boolean;
  pending: boolean;
}
const lines: Line[] = [];

function report(name: string, claim: string, details: fc.RunDetails<unknown>, ms: number, pending?: string): void {
  const cases = details.numRuns;
  lines.push({ name, cases, ms, failed: details.failed, pending: pending !== undefined });
  const status = details.failed
    ? pending !== undefined
      ? `FAILED, known (pending: ${pending})`
      : 'FAILED'
    : details.interrupted
      ? 'ok (time bound reached)'
      : 'ok';
  console.log(
    `${name.padEnd(28)} ${fmt(cases).padStart(11)} cases ${(ms / 1000).toFixed(1).padStart(7)} s ${fmt((cases / ms) * 1000).padStart(8)} cases/s  ${status}`,
  );
  if (!details.failed) return;
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  console.log(`  claim: ${claim}`);
  console.log(`  error: ${error.split('\n')[0].slice(0, 600)}`);
  console.log(`  counterexample: ${fc.stringify(details.counterexample).slice(0, 600)}`);
  console.log(`  replay: seed ${details.seed}, path ${details.counterexamplePath}`);
  if (opts.fixtures) console.log(`  fixture: ${saveFixture(name, claim, details as fc.RunDetails<unknown[]>, pending)}`);
}

/** Time left for one part, sharing what remains among the parts still to run by weight. */
function timeShare(weight: number, weightLeft: number): number {
  return Math.max(1, ((deadline - Date.now()) * weight) / weightLeft);
}

let weightLeft = decoderNames.length + (runModel ? MODEL_TIME_WEIGHT : 0);
for (let i = 0; i < decoderNames.length; i++) {
  const name = decoderNames[i];
  const numRuns = Math.floor(decoderCases / (decoderNames.length - i));
  const started = performance.now();
  const details = fc.check(decoderProperty(name), {
    numRuns,
    seed: (seed + i) | 0,
    plugins: [fc.interruptAfterTimeLimit(timeShare(1, weightLeft))],
  });
  weightLeft -= 1;
  // A property that stopped early (failure, time) leaves its cases to the ones after it.
  decoderCases -= details.numRuns;
  const property = DECODER_PROPERTIES[name];
  report(name, property.claim, details, performance.now() - started, 'pending' in property ? property.pending : undefined);
}

if (runModel) {
  const pool = new HarnessPool();
  const started = performance.now();
  const details = await fc.check(relayModelProperty(pool), {
    numRuns: modelCases,
    seed: (seed + decoderNames.length) | 0,
    plugins: [fc.interruptAfterTimeLimit(timeShare(MODEL_TIME_WEIGHT, weightLeft))],
  });
  await pool.close();
  report(MODEL_PROPERTY, 'the relay answers every command sequence as the model predicts', details, performance.now() - started);
  const seen = [...pool.seen.entries()].sort((a, b) => b[1] - a[1]).map(([type, n]) => `${type} ${fmt(n)}`);
  console.log(`  packets checked against the model: ${seen.join(', ')}`);
  const events = [...pool.events.entries()].map(([name, n]) => `${name} ${fmt(n)}`);
  console.log(`  relay events: ${events.join(', ')}`);
}

const total = lines.reduce((sum, l) => sum + l.cases, 0);
const ms = lines.reduce((sum, l) => sum + l.ms, 0);
const failures = lines.filter((l) => l.failed && !l.pending).map((l) => l.name);
const known = lines.filter((l) => l.failed && l.pending).map((l) => l.name);
console.log(
  `total ${fmt(total)} cases in ${(ms / 1000).toFixed(1)} s (${fmt((total / ms) * 1000)} cases/s), ${failures.length} failed${failures.length > 0 ? `: ${failures.join(', ')}` : ''}` +
    (known.length > 0 ? `; ${known.length} known failure of pending work: ${known.join(', ')}` : ''),
);
process.exitCode = failures.length > 0 ? 1 : 0;
