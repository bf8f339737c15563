// Reads tap's closing summary (`# { total: N, pass: N, fail: N, ... }`) from the test log and
// prints it as the one line CI recognises, `N passed, N failed`; exits non-zero on any failure.
// Before that line it repeats every failing assertion with its spec file and diagnostics: CI
// records only the tail of the log, and a failure deep in a 600-second run must be readable there.
import { readFileSync } from 'node:fs';

const log = readFileSync(process.argv[2], 'utf8');

/** Each `not ok` line, with the spec file it ran in and the YAML diagnostics under it. */
function failures(text) {
  const lines = text.split('\n');
  const found = [];
  let file = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const spec = /^# Subtest: (specs\/\S+)/.exec(line);
    if (spec) file = spec[1];
    if (!/^\s*not ok \d+/.test(line)) continue;
    // A failing parent repeats its child's failure; the innermost assertion says the most.
    const block = [line.trim()];
    const indent = line.length - line.trimStart().length;
    for (let j = i + 1; j < lines.length && j < i + 40; j++) {
      const next = lines[j];
      if (next.trim() === '') break;
      const nextIndent = next.length - next.trimStart().length;
      if (nextIndent <= indent && !/^\s*---|^\s*\.\.\./.test(next)) break;
      block.push(next.trim());
      if (/^\s*\.\.\.\s*$/.test(next)) break;
    }
    found.push({ file, indent, block });
  }
  return found;
}

const failed = failures(log);
if (failed.length > 0) {
  console.log(`== failing assertions (${failed.length}, innermost first within each file)`);
  for (const { file, block } of failed.sort((a, b) => b.indent - a.indent).slice(0, 12)) {
    console.log(`-- ${file}`);
    for (const line of block.slice(0, 30)) console.log(`   ${line}`);
  }
}

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
const failedCount = field('fail') || Math.max(0, total - passed - skipped);
console.log(`${passed} passed, ${failedCount} failed`);
process.exit(failedCount === 0 ? 0 : 1);
