/** The pins file (actors/client/e2e/known-peers.ts): trust on first use, and what this process remembers of it. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { KnownPeers } from '../../actors/client/e2e/known-peers.ts';

const K1 = 'A'.repeat(43);
const K2 = 'B'.repeat(43);
const K3 = 'C'.repeat(43);

async function pinsFile(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-pins-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'known-peers');
}

t.test('a key already checked in this process is not read again, and another key is still refused', async (t) => {
  const file = await pinsFile(t);
  const pins = new KnownPeers(file);
  t.same(await pins.check('10.0.0.2', K1), { status: 'new' }, 'first use pins');
  t.equal(await readFile(file, 'utf8'), `10.0.0.2 ${K1}\n`);
  t.same(await pins.check('10.0.0.2', K1), { status: 'match' });
  t.same(await pins.check('10.0.0.2', K2), { status: 'changed', pinned: K1 }, 'a changed key is refused after a remembered match');
  // Another process re-pins the address (after `alphanet pins forget`): this one keeps the key it
  // checked, and still refuses any third key against the file.
  await writeFile(file, `10.0.0.2 ${K2}\n`);
  t.same(await pins.check('10.0.0.2', K1), { status: 'match' }, 'the key this process checked is remembered');
  t.same(await pins.check('10.0.0.2', K3), { status: 'changed', pinned: K2 }, 'any other key goes to the file');
  t.equal(await pins.forget('10.0.0.2'), true);
  t.same(await pins.check('10.0.0.2', K3), { status: 'new' }, 'after forget, the next key is pinned anew');
  t.equal(await readFile(file, 'utf8'), `10.0.0.2 ${K3}\n`);
});

t.test('compare() answers as check() would but pins nothing (a connector before its handshake proved the key)', async (t) => {
  const file = await pinsFile(t);
  const pins = new KnownPeers(file);
  t.same(await pins.compare('10.0.0.3', K1), { status: 'new' });
  await t.rejects(readFile(file, 'utf8'), { code: 'ENOENT' }, 'a first key compared is not written');
  t.same(await pins.check('10.0.0.3', K1), { status: 'new' }, 'check() still pins it as new');
  t.same(await pins.compare('10.0.0.3', K1), { status: 'match' });
  t.same(await pins.compare('10.0.0.3', K2), { status: 'changed', pinned: K1 }, 'a changed key is refused by compare too');
  t.equal(await readFile(file, 'utf8'), `10.0.0.3 ${K1}\n`, 'and the pin is unchanged');
});
