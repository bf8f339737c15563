/**
 * `--ws-port` as a real process: the relay prints `websocket on ws://HOST:PORT/alphanet` after
 * its listening line, a client connects through that URL, the bundle is served there; a bad
 * `--ws-trust-proxy` entry is refused by the parser, naming it.
 */
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '../../actors/client/index.ts';
import { startMain, within } from './relay-process.ts';

t.test('--ws-port 0 prints the WebSocket URL after the listening line, and it serves', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const run = startMain(['--port', '0', '--ws-port', '0', '--ws-trust-proxy', '10.0.0.0/8, ::1', '--db', path.join(dir, 'db.json')]);
  t.teardown(() => void run.child.kill('SIGKILL'));
  await run.listening;
  const printed = within(
    new Promise<RegExpExecArray>((resolve) => {
      const check = (): void => {
        const m = /^listening on \S+ [^\n]*\nwebsocket on (ws:\/\/127\.0\.0\.1:\d+\/alphanet)\n$/.exec(run.output().stdout);
        if (m) resolve(m);
        else run.child.stdout!.once('data', check);
      };
      check();
    }),
    10_000,
    `the websocket line (stdout so far: ${JSON.stringify(run.output().stdout)})`,
  );
  const [, url] = await printed;
  const client = await connect({ url, localAddress: '127.0.0.2' });
  t.match(client.virtualIp, /^\d+\.\d+\.\d+\.\d+$/, 'a client connects through the printed URL');
  await client.close();
  const bundle = await fetch(url.replace(/^ws:/, 'http:').replace(/\/alphanet$/, '/alphanet.js'), { signal: AbortSignal.timeout(30_000) });
  t.equal(bundle.status, 200, 'the bundle is served beside it');
  run.child.kill('SIGTERM');
  const [code] = await run.exited;
  t.equal(code, 0);
});

t.test('a --ws-trust-proxy entry that is no address or CIDR is refused, named', async (t) => {
  const run = startMain(['--port', '0', '--ws-port', '0', '--ws-trust-proxy', '10.0.0.0/8,proxy.example']);
  const [code] = await run.exited;
  t.not(code, 0);
  t.match(run.output().stderr, /proxy\.example/);
  t.equal(run.output().stdout, '');
});
