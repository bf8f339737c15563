import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PacketType } from '../../protocol/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startMain } from './relay-process.ts';

t.test('npm start: prints one listening line (--port 0, env for the db), serves, exits 0 on SIGTERM', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = startMain(['--plaintext', '--port', '0', '--keepalive-interval', '1234'], { ALPHANET_DB: path.join(dir, 'db.json'), ALPHANET_PORT: '1' });
  t.teardown(() => void run.child.kill('SIGKILL'));
  const address = await run.listening;
  t.match(address, /^127\.0\.0\.1:\d+$/, 'flag --port 0 beats ALPHANET_PORT');
  const port = Number(address.split(':')[1]);
  const { client, virtualIp } = await RawClient.open({ port, localAddress: '127.0.0.2' });
  t.equal(virtualIp.keepaliveIntervalMs, 1234);
  run.child.kill('SIGTERM');
  t.equal((await client.next(PacketType.Error)).code, 9, 'told RelayShuttingDown');
  const [code] = await run.exited;
  t.equal(code, 0);
  t.equal(run.output().stdout, `listening on ${address} (plaintext)\n`, 'exactly one stdout line, saying it is plain TCP');
});

t.test('--http-port 0 prints the dashboard URL on stdout, and it serves', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = startMain(['--port', '0', '--http-port', '0', '--db', path.join(dir, 'db.json')]);
  t.teardown(() => void run.child.kill('SIGKILL'));
  await run.listening;
  const m = /^dashboard on (http:\/\/127\.0\.0\.1:\d+)\/\nlistening on /.exec(run.output().stdout);
  t.ok(m, `stdout: ${JSON.stringify(run.output().stdout)}`);
  const health = await fetch(`${m![1]}/healthz`);
  t.equal(health.status, 200, 'the printed URL is the one serving');
  run.child.kill('SIGTERM');
  const [code] = await run.exited;
  t.equal(code, 0);
});

t.test('a store file that is not JSON stops the relay with the file named', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'broken.json');
  await writeFile(db, '{ not json');
  const run = startMain(['--port', '0', '--db', db]);
  const [code] = await run.exited;
  t.not(code, 0);
  t.match(run.output().stderr, db);
  t.equal(run.output().stdout, '');
});
