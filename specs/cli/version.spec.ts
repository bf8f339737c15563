/** `--version` prints the package's version, from the checkout's bin and from `npm start`. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { packageVersion } from '../../cli/version.ts';
import { run } from '../helpers/child-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

t.test('packageVersion() is the version in package.json', async (t) => {
  t.match(VERSION, /^\d+\.\d+\.\d+/);
  t.equal(packageVersion(), VERSION);
});

t.test('alphanet --version and -V print the version alone, exit 0', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = await run(process.execPath, ['bin/alphanet.js', flag], 20_000, { cwd: ROOT });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `${VERSION}\n`, flag);
  }
  const help = await run(process.execPath, ['bin/alphanet.js', '--help'], 20_000, { cwd: ROOT });
  t.match(help.stdout, /-V, --version\s+print the version of alphanet/);
});

t.test('npm start -- --version prints the version alone', async (t) => {
  const r = await run(NPM, ['start', '--silent', '--', '--version'], 30_000, { cwd: ROOT });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, `${VERSION}\n`);
});
