/**
 * `npm run docs:flags`: rewrites docs/RELAY.md's flag table from cli/relay-options.ts.
 * `npm run docs:flags -- --check` only says whether it is stale (exit 1 if so).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { withFlagTable } from './relay-flags-doc.ts';

const RELAY_MD = new URL('../docs/RELAY.md', import.meta.url);
const doc = readFileSync(RELAY_MD, 'utf8');
const generated = withFlagTable(doc);
if (process.argv.includes('--check')) {
  if (generated !== doc) {
    process.stderr.write('docs/RELAY.md: the flag table is stale; run `npm run docs:flags`\n');
    process.exit(1);
  }
} else if (generated !== doc) {
  writeFileSync(RELAY_MD, generated);
  process.stdout.write('docs/RELAY.md: flag table rewritten\n');
}
