/**
 * Every failing case `npm run fuzz` ever found (fuzz/fixtures/*.json), replayed as it was
 * found: the shrunk counterexample through the same property, and the recorded seed and path
 * through fast-check. A fixture marked `"ci": false` documents a bug owned elsewhere that is not
 * fixed yet (its note says whose); it is listed, not replayed.
 */
import t from 'tap';
import fc from 'fast-check';
import { DECODER_PROPERTIES, decoderProperty, type DecoderPropertyName } from '../../fuzz/decoder-properties.ts';
import { MODEL_PROPERTY, loadFixtures, replayFixture } from '../../fuzz/fixtures.ts';
import { HarnessPool } from '../../fuzz/relay-property.ts';

const fixtures = loadFixtures();
const pool = new HarnessPool();
t.teardown(() => pool.close());

t.test('the fixture folder holds the fixtures the fuzz found', async (t) => {
  t.ok(fixtures.length > 0, 'fuzz/fixtures/ has fixtures');
  for (const { file, fixture } of fixtures) {
    t.ok(fixture.property === MODEL_PROPERTY || fixture.property in DECODER_PROPERTIES, `${file} names a known property`);
    t.type(fixture.seed, 'number', `${file} has its seed`);
    t.ok(fixture.error.length > 0, `${file} says what failed`);
    if (!fixture.ci) t.ok((fixture.note ?? '').length > 0, `${file} is left out of CI and says why`);
  }
});

for (const { file, fixture } of fixtures) {
  if (!fixture.ci) {
    t.comment(`not replayed (${file}): ${fixture.note}`);
    continue;
  }
  t.test(`${file}: the counterexample passes now`, async () => {
    await replayFixture(fixture, pool);
  });
  if (fixture.property !== MODEL_PROPERTY && fixture.path !== null) {
    t.test(`${file}: seed ${fixture.seed} and its path replay green`, async (t) => {
      const details = fc.check(decoderProperty(fixture.property as DecoderPropertyName), { seed: fixture.seed, path: fixture.path!, numRuns: 1 });
      t.notOk(details.failed, details.failed ? String((details.errorInstance as Error).message) : 'replayed');
    });
  }
}
