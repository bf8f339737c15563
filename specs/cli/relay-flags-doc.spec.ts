/** docs/RELAY.md's flag table is the one the relay command is built from, and says every flag. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildRelayCommand } from '../../cli/relay-command.ts';
import { FLAGS_BEGIN, FLAGS_END, renderFlagTable, withFlagTable } from '../../cli/relay-flags-doc.ts';
import { RELAY_FLAGS } from '../../cli/relay-options.ts';

const RELAY_MD = readFileSync(new URL('../../docs/RELAY.md', import.meta.url), 'utf8');

t.test('docs/RELAY.md holds the generated table exactly (run `npm run docs:flags` when this fails)', async (t) => {
  t.equal(withFlagTable(RELAY_MD), RELAY_MD);
});

t.test('every option of the relay command comes from the table, and the table from nothing else', async (t) => {
  const built = buildRelayCommand().options.map((o) => o.flags);
  t.same(built, RELAY_FLAGS.map((row) => row.flags));
  // The flags issue 15 found missing from the docs are there now.
  for (const flag of ['--http-port <port>', '--http-host <host>', '--inspect [url]', '--stop-timeout <ms>']) {
    t.ok(RELAY_MD.includes(`| \`${flag}\` |`), `${flag} is in RELAY.md's table`);
  }
});

t.test('withFlagTable replaces only the marked block, and refuses a document without markers', async (t) => {
  const doc = `before\n${FLAGS_BEGIN}\nstale | row\n${FLAGS_END}\nafter\n`;
  t.equal(withFlagTable(doc, 'TABLE'), `before\n${FLAGS_BEGIN}\nTABLE\n${FLAGS_END}\nafter\n`);
  t.throws(() => withFlagTable('no markers'), /markers are missing/);
  const table = renderFlagTable([{ flags: '--a <n>', env: 'A', description: 'x | y', default: 3, why: 'because' }]);
  t.equal(table.split('\n')[2], '| `--a <n>` | `A` | `3` | x \\| y — because |', 'a pipe in the text does not split the cell');
});
