/**
 * Issue 9, finding 9, end to end as a new user would meet it: two `npm start`-style relays
 * (the real cli/relay-main.ts as processes) in one checkout, so on the same default --db. The
 * second is refused at start, naming the first; the first keeps serving; the store is intact.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { PacketType } from '../../protocol/index.ts';
import { openAddressStore } from '../../storage/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { escapeRegExp } from './store-files.ts';

const RELAY_MAIN = fileURLToPath(new URL('../../cli/relay-main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
const START_TIMEOUT_MS = 30_000;

/** Runs the relay with `cwd` as its checkout and no --db (the default data/alphanet.json), on plain TCP for the raw clients. */
function startRelayProcess(cwd: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, ALPHANET_LOG_LEVEL: 'warn' };
  delete env.ALPHANET_DB;
  const child = spawn(process.execPath, ['--import', TSX, RELAY_MAIN, '--plaintext', '--port', '0', '--host', '127.0.0.1'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  const timer = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
  void exited.then(() => clearTimeout(timer));
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /listening on 127\.0\.0\.1:(\d+) \(plaintext\)\n/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => reject(new Error(`relay exited before listening: ${stderr}`)));
  });
  listening.catch(() => {});
  return { child, listening, exited, output: () => ({ stdout, stderr }) };
}

t.test('a second relay on the same store is refused, naming the first; the store stays intact', async (t) => {
  const checkout = await mkdtemp(path.join(tmpdir(), 'alphanet-two-relays-'));
  t.teardown(() => rm(checkout, { recursive: true, force: true }));
  const dbPath = path.join(checkout, 'data', 'alphanet.json');

  const first = startRelayProcess(checkout);
  t.teardown(() => void first.child.kill('SIGKILL'));
  const port = await first.listening;
  const a = await RawClient.open({ port, localAddress: '127.0.0.2' });

  const second = startRelayProcess(checkout);
  t.teardown(() => void second.child.kill('SIGKILL'));
  const [code] = await second.exited;
  t.equal(code, 1, 'the second relay exits 1');
  t.match(
    second.output().stderr,
    new RegExp(`${escapeRegExp(dbPath)} is in use by pid \\d+ on .*relay-main\\.ts.*holding it since \\d{4}-\\d\\d-\\d\\dT.*lock file ${escapeRegExp(dbPath)}\\.lock.*stop that process first, or give this one its own --db`),
    'the message names the holder (pid, command, since when), the lock file and how to go on',
  );
  // The relay re-runs itself with its heap flag (cli/node-flags.ts), so the holder may be the
  // first process's child: the pid named must be that relay, whichever process it is.
  const named = Number(/in use by pid (\d+)/.exec(second.output().stderr)?.[1]);
  const cmdline = await readFile(`/proc/${named}/cmdline`, 'utf8').catch(() => '');
  t.ok(named === first.child.pid || cmdline.includes('relay-main.ts'), `pid ${named} is the first relay (${cmdline.replaceAll('\0', ' ')})`);
  t.equal(second.output().stdout, '', 'it never listened');

  const b = await RawClient.open({ port, localAddress: '127.0.0.3' });
  t.not(b.virtualIp.ip, a.virtualIp.ip, 'the first relay kept serving and handing out distinct addresses');
  first.child.kill('SIGTERM');
  t.equal((await a.client.next(PacketType.Error)).code, 9, 'told RelayShuttingDown');
  t.equal((await first.exited)[0], 0, 'the first relay stops cleanly');

  const store = await openAddressStore({ path: dbPath });
  t.teardown(() => store.close().catch(() => undefined));
  t.equal(store.size, 2);
  t.equal(store.lookup('127.0.0.2'), a.virtualIp.ip, '127.0.0.2 kept its address');
  t.equal(store.lookup('127.0.0.3'), b.virtualIp.ip, '127.0.0.3 kept its address');
  t.same((await readdir(`${dbPath}.shards`)).filter((n) => n.startsWith('journal-')), [], 'the clean stop checkpointed its journal');
  await store.close();

  const third = startRelayProcess(checkout);
  t.teardown(() => void third.child.kill('SIGKILL'));
  const again = await RawClient.open({ port: await third.listening, localAddress: '127.0.0.2' });
  t.equal(again.virtualIp.ip, a.virtualIp.ip, 'with the first relay gone, the next one starts and 127.0.0.2 keeps its address');
  third.child.kill('SIGTERM');
  t.equal((await third.exited)[0], 0);
});
