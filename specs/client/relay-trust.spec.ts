/** The known-relays file: where it lives, what it holds, and how it is rewritten. */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { configDir, knownRelaysPath, pinRelay, readKnownRelays } from '../../actors/client/index.ts';

const A = `sha256:${'AB:'.repeat(31)}AB`;
const B = `sha256:${'01:'.repeat(31)}01`;

t.test('the config directory: ALPHANET_CONFIG_DIR, else $XDG_CONFIG_HOME/alphanet, else ~/.config/alphanet', async (t) => {
  t.equal(configDir({ ALPHANET_CONFIG_DIR: '/x', XDG_CONFIG_HOME: '/y' }), '/x');
  t.equal(configDir({ XDG_CONFIG_HOME: '/y' }), path.join('/y', 'alphanet'));
  t.equal(configDir({ XDG_CONFIG_HOME: '' }), path.join(os.homedir(), '.config', 'alphanet'));
  t.equal(knownRelaysPath({ ALPHANET_CONFIG_DIR: '/x' }), path.join('/x', 'known-relays'));
});

t.test('pins are kept per relay address, replaced whole through a rename, and comments and junk are skipped', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-trust-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'nested', 'known-relays');
  t.same([...(await readKnownRelays(file))], [], 'no file, no pins');
  await pinRelay(file, '127.0.0.1:1337', A);
  await pinRelay(file, '[::1]:1337', B);
  await pinRelay(file, '127.0.0.1:1337', B);
  t.same([...(await readKnownRelays(file))], [['127.0.0.1:1337', B], ['[::1]:1337', B]]);
  t.same(await readdir(path.dirname(file)), ['known-relays'], 'no temporary file left behind');
  await writeFile(file, `${await readFile(file, 'utf8')}# a comment\nhalf-a-line\nrelay.example:1337 not-a-fingerprint\nrelay.example:7 ${A.toLowerCase()}\n`);
  t.same([...(await readKnownRelays(file))], [['127.0.0.1:1337', B], ['[::1]:1337', B], ['relay.example:7', A]]);
});
