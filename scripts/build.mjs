#!/usr/bin/env node
/**
 * `npm run build` (and `prepack`): the package as users install it. tsc emits ESM JavaScript and
 * .d.ts into dist/ with the source layout kept (rewriteRelativeImportExtensions turns the
 * sources' `./x.ts` imports into `./x.js`), and the files the relay reads at run time are copied
 * to where the compiled modules look for them (dist/observe/ → ../dashboard/).
 * tsc leaves `.ts` specifiers in .d.ts files (TypeScript 5 resolves them to the .d.ts); they are
 * rewritten to `.js` here so consumers on older TypeScript and other tools read them too.
 * A checkout never needs this: it runs the TypeScript sources through tsx.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = new URL('../dist/', import.meta.url);
/** Read at run time relative to the module that reads them (see DASHBOARD_DIR). */
const RUNTIME_DIRS = ['dashboard'];

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  process.stderr.write(`build: tsc failed (exit ${String(result.status ?? result.signal)})\n`);
  process.exit(1);
}
/** A relative specifier ending in .ts, in `from '…'`, `import('…')` or `import '…'`. */
const RELATIVE_TS = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  // `parentPath` from Node 20.12, `path` before it.
  const file = `${entry.parentPath ?? entry.path}/${entry.name}`;
  const text = readFileSync(file, 'utf8');
  const rewritten = text.replace(RELATIVE_TS, '$1$2$3.js$2');
  if (rewritten !== text) writeFileSync(file, rewritten);
}
for (const dir of RUNTIME_DIRS) cpSync(new URL(`../${dir}/`, import.meta.url), new URL(`${dir}/`, dist), { recursive: true });
// The browser bundle the relay serves at /alphanet.js (docs/CLIENT.md "From a browser"), and the
// example page it serves at /, where the compiled relay looks for them (actors/relay/browser-files.ts).
const { buildBrowserBundle } = await import('./browser-bundle.mjs');
const bundle = await buildBrowserBundle({ outfile: fileURLToPath(new URL('browser/alphanet.js', dist)) });
process.stderr.write(`build: dist/browser/alphanet.js (${bundle.length} bytes)\n`);
cpSync(new URL('../examples/browser/', import.meta.url), new URL('examples/browser/', dist), { recursive: true });
