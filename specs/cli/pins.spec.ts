/**
 * `alphanet pins list|forget` as real processes, and the pin they manage at work: a peer whose key
 * changed is refused until its pin is forgotten (docs/SECURITY.md "Pins").
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { runAlphanet, type Run } from './run-alphanet.ts';

/** Runs `alphanet ARGS`; a hang fails rather than waits. */
function alphanet(args: string[]): Promise<Run> {
  return runAlphanet(args);
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-pins-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('pins list prints every pin; forget removes one and says so; forgetting none exits 1', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'known-peers');
  const k1 = 'A'.repeat(43);
  const k2 = 'B'.repeat(43);
  await writeFile(file, `10.0.0.1 ${k1}\n10.0.0.2 ${k2}\n`);
  const listed = await alphanet(['pins', 'list', '--known-peers', file]);
  t.equal(listed.code, 0, listed.stderr);
  t.equal(listed.stdout, `10.0.0.1 ${k1}\n10.0.0.2 ${k2}\n`);
  const forgot = await alphanet(['pins', 'forget', '10.0.0.1', '--known-peers', file]);
  t.equal(forgot.code, 0, forgot.stderr);
  t.equal(forgot.stdout, 'forgot the pin of 10.0.0.1\n');
  t.equal(await readFile(file, 'utf8'), `10.0.0.2 ${k2}\n`, 'the other pin stays');
  const missing = await alphanet(['pins', 'forget', '10.0.0.1', '--known-peers', file]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no pin for 10\.0\.0\.1/);
  const bad = await alphanet(['pins', 'forget', 'not-an-ip', '--known-peers', file]);
  t.not(bad.code, 0, 'a bad address is refused');
});

t.test('a peer with a new key is refused until `pins forget` (found beside --identity), then trusted anew', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const identity = path.join(dir, 'me', 'identity');
  const me = await clientFor(t, relay, 3, { identity });
  // The peer at 127.0.0.2 (so one virtual IP) first with one key…
  const before = await clientFor(t, relay, 2, { identity: path.join(dir, 'peer-old', 'identity') });
  await before.listen(7);
  (await me.connect({ address: before.virtualIp, port: 7 })).close();
  await before.close();
  // …then, reinstalled, with another.
  const after = await clientFor(t, relay, 2, { identity: path.join(dir, 'peer-new', 'identity') });
  t.equal(after.virtualIp, before.virtualIp, 'the same virtual IP (ip mode: the same real IP)');
  await after.listen(7);
  await t.rejects(me.connect({ address: after.virtualIp, port: 7 }), { code: 'ERR_E2E_PEER_KEY_CHANGED' });
  const listed = await alphanet(['pins', 'list', '--identity', identity]);
  t.equal(listed.stdout, `${before.virtualIp} ${before.fingerprint}\n`, 'the old key is what is pinned');
  const forgot = await alphanet(['pins', 'forget', after.virtualIp, '--identity', identity]);
  t.equal(forgot.code, 0, forgot.stderr);
  const conn = await me.connect({ address: after.virtualIp, port: 7 });
  t.equal(conn.peerFingerprint, after.fingerprint, 'the new key is trusted on first use again');
  conn.close();
  t.equal((await alphanet(['pins', 'list', '--identity', identity])).stdout, `${after.virtualIp} ${after.fingerprint}\n`);
});
