/**
 * The CI slice of `npm run fuzz`'s decoder half: a few thousand cases of each decoder property
 * (both frame readers and the codec, arbitrary bytes cut at arbitrary points). The seed is fixed
 * so CI is repeatable; FUZZ_SEED picks another. The full run is `npm run fuzz`.
 */
import t from 'tap';
import fc from 'fast-check';
import { DECODER_PROPERTIES, decoderProperty, type DecoderPropertyName } from '../../fuzz/decoder-properties.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const CASES_PER_PROPERTY = 2_000;

const names = Object.keys(DECODER_PROPERTIES) as DecoderPropertyName[];
names.forEach((name, i) => {
  const property = DECODER_PROPERTIES[name];
  if ('pending' in property && property.pending !== undefined) {
    t.comment(`${name} left out of CI until done: ${property.pending}`);
    return;
  }
  t.test(`${name}: ${property.claim}`, async (t) => {
    const details = fc.check(decoderProperty(name), { numRuns: CASES_PER_PROPERTY, seed: SEED + i });
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    t.notOk(
      details.failed,
      details.failed ? `${error}\ncounterexample ${fc.stringify(details.counterexample)}\nseed ${details.seed} path ${details.counterexamplePath}` : `${details.numRuns} cases`,
    );
    t.equal(details.numRuns, CASES_PER_PROPERTY, 'every case ran');
  });
});

t.test('the readers are fuzzed against allocations they make, not only what they return', async (t) => {
  // The length-limit property must be able to fail: a reader that allocated a declared length
  // before judging it is caught by the allocation log, whatever it returns.
  const { withAllocationLog } = await import('../../fuzz/allocation-log.ts');
  const { sizes } = withAllocationLog(() => new Uint8Array(1234));
  t.same(sizes, [1234], 'a Uint8Array allocation is recorded with its size');
  t.same(withAllocationLog(() => Buffer.alloc(10)).sizes, [], 'Buffers (socket chunks) are not counted');
});
