/**
 * `alphanet identity show|rotate` as real processes: the key printed is the key the client proves,
 * rotation keeps the old key (mode 0600) and makes a new one, and a changed key is what peers' pins
 * and a key-mode relay see (docs/SECURITY.md "Rotating keys").
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { loadIdentity } from '../../actors/client/identity.ts';
import { retiredName } from '../../cli/identity.ts';
import { runAlphanet, type Run } from './run-alphanet.ts';

/** Runs `alphanet ARGS` with its config directory in `dir`. */
function alphanet(dir: string, args: string[]): Promise<Run> {
  return runAlphanet(args, { ALPHANET_CONFIG_DIR: dir });
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-identity-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('show prints the key the client proves, and never creates one', async (t) => {
  const dir = await tempDir(t);
  const missing = await alphanet(dir, ['identity', 'show']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no identity at .*identity yet.*alphanet identity rotate.*\(ERR_IDENTITY\)/s);
  t.same(await readdir(dir), [], 'show made no file');

  const identity = await loadIdentity(path.join(dir, 'identity'));
  const shown = await alphanet(dir, ['identity', 'show']);
  t.equal(shown.code, 0, shown.stderr);
  t.equal(shown.stdout, `key ${identity.fingerprint}\nfile ${path.join(dir, 'identity')}\n`);
});

t.test('rotate keeps the old key beside a new one, both 0600, and says what a new key means', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'my-key');
  const old = await loadIdentity(file);
  const rotated = await alphanet(dir, ['identity', 'rotate', '--identity', file]);
  t.equal(rotated.code, 0, rotated.stderr);
  const fresh = await loadIdentity(file);
  t.not(fresh.fingerprint, old.fingerprint, 'a new key');
  const oldFile = /old file (.+)\n/.exec(rotated.stdout)?.[1];
  t.ok(oldFile, rotated.stdout);
  t.match(rotated.stdout, new RegExp(`^key ${fresh.fingerprint}\\nfile ${file}\\nold key ${old.fingerprint}\\n`));
  t.equal((await loadIdentity(oldFile as string)).fingerprint, old.fingerprint, 'the old key is kept whole');
  t.equal((await stat(oldFile as string)).mode & 0o777, 0o600, 'the old key stays readable by its owner only');
  t.equal((await stat(file)).mode & 0o777, 0o600);
  t.match(rotated.stderr, /alphanet pins forget/);
  t.match(rotated.stderr, new RegExp(`mv ${oldFile} ${file}`));
});

t.test('rotate refuses a key others can read, and moves nothing', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'identity');
  await loadIdentity(file);
  const { chmod } = await import('node:fs/promises');
  await chmod(file, 0o644);
  const refused = await alphanet(dir, ['identity', 'rotate']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /readable by others.*chmod 600/);
  t.same(await readdir(dir), ['identity'], 'nothing moved, nothing made');
});

t.test('rotate with no key yet makes one; a broken file is refused', async (t) => {
  const dir = await tempDir(t);
  const made = await alphanet(dir, ['identity', 'rotate']);
  t.equal(made.code, 0, made.stderr);
  t.equal(made.stdout, `key ${(await loadIdentity(path.join(dir, 'identity'))).fingerprint}\nfile ${path.join(dir, 'identity')}\n`);
  const broken = path.join(dir, 'broken');
  await writeFile(broken, 'not a key', { mode: 0o600 });
  const refused = await alphanet(dir, ['identity', 'show', '--identity', broken]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /not an Ed25519 private key/);
});

t.test('the retired name sorts by time and has no colons', async (t) => {
  t.equal(retiredName('/k/identity', new Date('2026-12-06T08:30:00.123Z')), '/k/identity.old-2026-12-06T08-30-00Z');
});
