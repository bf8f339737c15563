/**
 * `--inspect` on the relay and on a client command, as real processes: the default URL is on
 * this machine at 1338, and each says once that it cannot reach an inspector that is not there,
 * then once that it reached it when it comes up.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { WebSocketServer } from 'ws';
import { run, start, type Running } from '../helpers/child-process.ts';
import { freePort, startMain } from './relay-process.ts';
import { isolateClientConfig } from '../helpers/client-config.ts';
import { within } from '../helpers/wait.ts';

// The relays these specs start serve TLS (the CLI default); clients pin them in a config dir of their own.
isolateClientConfig(t);

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));
const WAIT_MS = 20_000;

/** Resolves once `stderr()` has `count` lines containing `text`. */
function saidTimes(stream: NodeJS.ReadableStream | null, stderr: () => string, text: string, count = 1): Promise<void> {
  return within(
    `"${text}" on stderr`,
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (stderr().split('\n').filter((l) => l.includes(text)).length >= count) resolve();
      };
      stream?.on('data', check);
      check();
    }),
    WAIT_MS,
  );
}

t.test('--help of the relay and of a client command name the default inspector URL', async (t) => {
  for (const command of ['relay', 'expose']) {
    const help = await run(process.execPath, [BIN, command, '--help'], WAIT_MS);
    // \s+: help wraps at 80 columns, and where depends on the longest flag.
    t.match(help.stdout, /--inspect \[url\][\s\S]*default\s+ws:\/\/127\.0\.0\.1:1338/, command);
  }
});

t.test('the relay with --inspect and no inspector: one warning with the URL, then one line when it comes up', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-inspect-'));
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  const relay = startMain(['--port', '0', '--inspect', url, '--db', path.join(dir, 'db.json')], { ALPHANET_LOG_LEVEL: 'info' });
  t.teardown(() => void relay.child.kill('SIGKILL'));
  await within('relay listening', relay.listening, WAIT_MS);
  const stderr = () => relay.output().stderr;
  await saidTimes(relay.child.stderr, stderr, 'cannot reach the inspector');
  const line = JSON.parse(stderr().split('\n').find((l) => l.includes('cannot reach the inspector')) as string) as Record<string, unknown>;
  t.match(line, { level: 40, url, reason: /ECONNREFUSED/ });
  const inspector = new WebSocketServer({ port, host: '127.0.0.1' });
  t.teardown(() => new Promise<void>((resolve) => inspector.close(() => resolve())));
  await saidTimes(relay.child.stderr, stderr, 'connected to the inspector');
  t.equal(stderr().split('\n').filter((l) => l.includes('cannot reach the inspector')).length, 1, 'the outage said once');
  relay.child.kill('SIGTERM');
  t.equal((await relay.exited)[0], 0);
});

t.test('a client command with --inspect says it cannot reach the inspector, and keeps working', async (t) => {
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-inspect-'));
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  const relay = startMain(['--port', '0', '--db', path.join(dir, 'db.json')]);
  t.teardown(() => void relay.child.kill('SIGKILL'));
  const address = await within('relay listening', relay.listening, WAIT_MS);
  const forwarding: Running = start(process.execPath, [BIN, 'forward', '--relay', address, '--local-address', '127.0.0.3', '--inspect', url, '0', '10.0.0.9:80'], {
    env: { ...process.env, ALPHANET_RELAY: '' },
  });
  t.teardown(() => void forwarding.child.kill('SIGKILL'));
  await forwarding.waitFor(/^forwarding /, WAIT_MS);
  const stderr = () => forwarding.output().stderr;
  await saidTimes(forwarding.child.stderr, stderr, 'cannot reach the inspector');
  t.match(stderr(), new RegExp(`"url":"ws://127\\.0\\.0\\.1:${port}"`));
  forwarding.child.kill('SIGINT');
  t.equal((await forwarding.exited(WAIT_MS)).code, 0);
});
