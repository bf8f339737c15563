// Reads tap's closing summary (`# { total: N, pass: N, fail: N, ... }`) from the test log and
// prints it as the one line CI recognises, `N passed, N failed`; exits non-zero on any failure.
import { readFileSync } from 'node:fs';

const log = readFileSync(process.argv[2], 'utf8');
const matches = [...log.matchAll(/^# \{ total: (\d+)(.*?)\}$/gm)];
if (matches.length === 0) {
  console.log('0 passed, 1 failed');
  console.error('no tap summary found in the test output');
  process.exit(1);
}
const last = matches[matches.length - 1];
const field = (name) => Number((new RegExp(`${name}: (\\d+)`).exec(last[2]) ?? [0, 0])[1]);
const total = Number(last[1]);
const passed = field('pass');
const skipped = field('skip') + field('todo');
const failed = field('fail') || Math.max(0, total - passed - skipped);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
