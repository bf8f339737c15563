/** The relay runs with its Node flags however it is started: `alphanet relay` re-runs itself once with them. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { missingNodeFlags, RELAY_NODE_FLAGS } from '../../cli/node-flags.ts';
import { alive, childPids, commandLine, start } from '../helpers/child-process.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = path.join(ROOT, 'bin/alphanet.js');
const linux = process.platform === 'linux';

t.test('missingNodeFlags: a flag counts as present on the command line or in NODE_OPTIONS, whatever its value', async (t) => {
  t.same(missingNodeFlags(RELAY_NODE_FLAGS, [], ''), ['--initial-old-space-size=64']);
  t.same(missingNodeFlags(RELAY_NODE_FLAGS, ['--import', 'tsx'], '--max-old-space-size=512'), ['--initial-old-space-size=64']);
  t.same(missingNodeFlags(RELAY_NODE_FLAGS, ['--initial-old-space-size=64'], ''), []);
  t.same(missingNodeFlags(RELAY_NODE_FLAGS, ['--initial-old-space-size=128'], ''), [], "the user's own value is kept");
  t.same(missingNodeFlags(RELAY_NODE_FLAGS, [], '--trace-gc --initial_old_space_size=32'), [], 'V8 reads _ as -');
});

async function tempDb(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-flags-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'db.json');
}

/** `alphanet relay` from the bin, as a global install or npx starts it (no node flags). */
async function startBinRelay(t: Test, nodeArgs: string[] = []) {
  const relay = start(process.execPath, [...nodeArgs, BIN, 'relay', '--port', '0', '--db', await tempDb(t), '--log-level', 'warn']);
  t.teardown(async () => {
    for (const pid of relay.child.pid ? await childPids(relay.child.pid).catch(() => []) : []) process.kill(pid, 'SIGKILL');
    relay.child.kill('SIGKILL');
  });
  const [, address] = await relay.waitFor(/listening on (\S+) \(TLS, fingerprint sha256:[0-9A-F:]{95}\)\n/, 30_000);
  return { relay, address: address as string, pid: relay.child.pid as number };
}

/** Waits until `pid` is gone; fails after `timeoutMs`. */
async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await delay(50)) if (!alive(pid)) return true;
  return false;
}

t.test('alphanet relay re-runs itself once with --initial-old-space-size=64, prints as before, and SIGTERM still exits 0', { skip: !linux && 'reads /proc' }, async (t) => {
  const { relay, address, pid } = await startBinRelay(t);
  t.match(address, /^127\.0\.0\.1:\d+$/);
  const children = await childPids(pid);
  t.equal(children.length, 1, 'one child: the relay');
  const argv = await commandLine(children[0] as number);
  t.ok(argv.includes('--initial-old-space-size=64'), `child runs with the flag: ${argv.join(' ')}`);
  t.notOk((await commandLine(pid)).includes('--initial-old-space-size=64'), 'the parent was started without it');
  t.equal(argv.filter((a) => a === 'relay').length, 1, 'same arguments, once');
  relay.child.kill('SIGTERM');
  const ran = await relay.exited(15_000);
  t.equal(ran.code, 0, `exit status passed through: ${ran.stderr}`);
  t.match(ran.stdout, /^listening on \S+ \(TLS, fingerprint sha256:[0-9A-F:]{95}\)\n$/, 'exactly the one stdout line');
  t.ok(await gone(children[0] as number, 5_000), 'the relay child is gone');
});

t.test('a relay whose parent is killed (SIGKILL) closes by itself instead of living on', { skip: !linux && 'reads /proc' }, async (t) => {
  const { relay, pid } = await startBinRelay(t);
  const [child] = await childPids(pid);
  relay.child.kill('SIGKILL');
  await relay.exited(10_000);
  t.ok(await gone(child as number, 10_000), 'the orphaned relay exited within 10 s');
});

t.test('started with the flag already (npm start, or a value of its own), the relay does not re-run', { skip: !linux && 'reads /proc' }, async (t) => {
  const { relay, pid } = await startBinRelay(t, ['--initial-old-space-size=32']);
  t.same(await childPids(pid), [], 'no child process');
  relay.child.kill('SIGTERM');
  t.equal((await relay.exited(15_000)).code, 0);
});

t.test('under a debugger (--inspect) the relay stays in the process being debugged, and says what it runs without', { skip: !linux && 'reads /proc' }, async (t) => {
  const { relay, pid } = await startBinRelay(t, ['--inspect=127.0.0.1:0']);
  t.same(await childPids(pid), [], 'no child process');
  t.match(relay.output().stderr, /running without --initial-old-space-size=64 under --inspect/);
  relay.child.kill('SIGTERM');
  t.equal((await relay.exited(15_000)).code, 0);
});
