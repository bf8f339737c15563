/**
 * `--ws-port` as a real process: the relay prints `websocket on URL (how)` after its listening
 * line — wss with the TCP port's fingerprint by default (TLS), ws with `--plaintext` or
 * `--ws-plaintext` — a client
 * connects through that URL, the bundle is served there (https under TLS). Client commands take
 * the URL as `--relay` (`alphanet whoami`, and a `forward` tunnel carrying bytes over wss), pin
 * the relay's key over wss as over TCP, and refuse flags that contradict the URL's scheme. A bad
 * `--ws-trust-proxy` entry is refused by the parser, naming it.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '../../actors/client/index.ts';
import { run } from '../helpers/child-process.ts';
import { isolateClientConfig } from '../helpers/client-config.ts';
import { pseudoRandom, sha256 } from '../client/fixtures.ts';
import { makeIdentity } from '../helpers/tls-identity.ts';
import { startMain, type RelayProcess } from './relay-process.ts';
import { BIN } from './tunnel-process.ts';
import { within } from '../helpers/wait.ts';

// The relays here serve TLS (the CLI default); clients pin them in a config dir of their own.
const configDir = isolateClientConfig(t);
// ALPHANET_PLAINTEXT is left out: commander counts any value, even an empty one, as the flag.
const ENV: NodeJS.ProcessEnv = { ...process.env, ALPHANET_RELAY: '' };
delete ENV.ALPHANET_PLAINTEXT;

function alphanet(args: string[]) {
  return run(process.execPath, [BIN, ...args], 30_000, { env: ENV });
}

/** Starts the relay command in a directory of its own and waits for its `websocket on` line. */
async function relayWithWs(t: Test, extra: string[], env: Record<string, string> = {}): Promise<{ run: RelayProcess; url: string; how: string; listening: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = startMain(['--port', '0', '--ws-port', '0', '--db', path.join(dir, 'db.json'), ...extra], env);
  t.teardown(() => void relay.child.kill('SIGKILL'));
  await within('the relay to listen', relay.listening, 20_000);
  const [, listening, url, how] = await within(
    `the websocket line (stdout so far: ${JSON.stringify(relay.output().stdout)})`,
    new Promise<RegExpExecArray>((resolve) => {
      const check = (): void => {
        const m = /^(listening on [^\n]*)\nwebsocket on (wss?:\/\/127\.0\.0\.1:\d+\/alphanet) \(([^)\n]*)\)\n$/.exec(relay.output().stdout);
        if (m) resolve(m);
        else relay.child.stdout.once('data', check);
      };
      check();
    }),
    10_000,
  );
  return { run: relay, url, how, listening };
}

t.test('by default the WebSocket port serves wss with the TCP port’s key; --relay wss://… pins it and carries a tunnel', async (t) => {
  const { run: relay, url, how, listening } = await relayWithWs(t, []);
  const fingerprint = /TLS, fingerprint (sha256:[0-9A-F:]{95})/.exec(listening)?.[1];
  t.ok(fingerprint, `the TCP port serves TLS: ${listening}`);
  t.match(url, /^wss:\/\//, 'the WebSocket URL is wss');
  t.equal(how, `wss, fingerprint ${fingerprint}`, 'and the line says so, with the same fingerprint');

  // The bundle is served beside it, over https with the relay's certificate.
  const bundle = await within(
    'GET /alphanet.js over https',
    new Promise<number>((resolve, reject) =>
      https.get(url.replace(/^wss:/, 'https:').replace(/\/alphanet$/, '/alphanet.js'), { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject),
    ),
    30_000,
  );
  t.equal(bundle, 200, 'the bundle over https');

  // A client command over wss: pinned on first use, said on stderr, then checked.
  const first = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.2']);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /^\d+\.\d+\.\d+\.\d+\n$/, 'whoami over wss prints the virtual IP');
  const where = url.replace(/^wss:\/\//, '').replace(/\/alphanet$/, '');
  t.match(first.stderr, `trusting the relay at ${where} on first use: ${fingerprint}`);
  t.match(await readFile(path.join(configDir, 'known-relays'), 'utf8'), `${where} ${fingerprint}`, 'pinned in the known-relays file');
  const second = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.2']);
  t.equal(second.code, 0, second.stderr);
  t.equal(second.stdout, first.stdout, 'the same virtual IP again');
  t.notMatch(second.stderr, /trusting/, 'not pinned again');
  // A URL without a path is the relay's /alphanet.
  const bare = await alphanet(['whoami', '--relay', url.replace(/\/alphanet$/, ''), '--local-address', '127.0.0.2']);
  t.equal(bare.code, 0, bare.stderr);
  const wrong = await alphanet(['whoami', '--relay', url, '--relay-fingerprint', `sha256:${'AB:'.repeat(31)}AB`, '--local-address', '127.0.0.2']);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /presented TLS key sha256:.*not sha256:AB:AB.*ERR_RELAY_FINGERPRINT_MISMATCH/, 'an explicit wrong fingerprint is refused over wss');
  const plaintext = await alphanet(['whoami', '--relay', url, '--plaintext']);
  t.equal(plaintext.code, 1);
  t.match(plaintext.stderr, /is WebSocket over TLS: leave out --plaintext.*ERR_INVALID_ARGUMENT/);

  // A tunnel over wss: `alphanet forward --relay wss://…` to a library client (over wss too) echoing on port 7.
  const echo = await connect({ url, localAddress: '127.0.0.3', tls: { knownRelaysFile: path.join(configDir, 'known-relays') } });
  t.teardown(() => echo.close());
  const listener = await echo.listen(7);
  // Ends with an error when the spec closes the client: only the bytes are checked.
  const ignore = (): void => {};
  void (async () => {
    for await (const conn of listener) {
      void (async () => {
        for await (const chunk of conn) await conn.send(chunk);
        await conn.end();
      })().catch(ignore);
    }
  })().catch(ignore);
  const forward = spawn(process.execPath, [BIN, 'forward', '--relay', url, '--local-address', '127.0.0.4', '0', `${echo.virtualIp}:7`], { env: ENV });
  t.teardown(() => void forward.kill('SIGKILL'));
  let out = '';
  let err = '';
  forward.stderr.on('data', (c: Buffer) => (err += c));
  const ready = await within(
    'forward to be ready',
    new Promise<string>((resolve, reject) => {
      forward.stdout.on('data', (c: Buffer) => {
        out += c;
        const m = /forwarding (\S+):(\d+) -> /.exec(out);
        if (m) resolve(m[2]);
      });
      forward.once('exit', (code) => reject(new Error(`forward exited ${code}: ${err}`)));
    }),
    30_000,
  );
  const socket = net.connect({ host: '127.0.0.1', port: Number(ready) });
  await within('connect to the forward port', once(socket, 'connect'), 10_000);
  const payload = pseudoRandom(5, 512 * 1024);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.end(payload);
  await within('the echo to end', once(socket, 'end'), 60_000);
  const got = Buffer.concat(chunks);
  t.equal(got.length, payload.length, 'every byte came back through forward over wss');
  t.equal(sha256(got), sha256(payload), 'intact (SHA-256)');
  forward.kill('SIGTERM');
  await echo.close();
  relay.child.kill('SIGTERM');
  const [code] = await within('the relay to exit', relay.exited, 20_000);
  t.equal(code, 0);
});

t.test('SIGHUP renews the key on the wss port too: a pinned client refuses it with the words to accept it, and accepts it when told', async (t) => {
  const [old, renewed] = [await makeIdentity(t), await makeIdentity(t)];
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-cli-hup-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const [certFile, keyFile] = [path.join(dir, 'relay.crt'), path.join(dir, 'relay.key')];
  await copyFile(old.certFile, certFile);
  await copyFile(old.keyFile, keyFile);
  const { run: relay, url, how } = await relayWithWs(t, ['--tls-cert', certFile, '--tls-key', keyFile], { ALPHANET_LOG_LEVEL: 'info' });
  t.equal(how, `wss, fingerprint ${old.fingerprint}`, 'the wss port serves the given certificate');
  const where = url.replace(/^wss:\/\//, '').replace(/\/alphanet$/, '');
  const first = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.2']);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stderr, `trusting the relay at ${where} on first use: ${old.fingerprint}`);

  await copyFile(renewed.certFile, certFile);
  await copyFile(renewed.keyFile, keyFile);
  relay.child.kill('SIGHUP');
  await within(
    'the reload to be logged',
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (/SIGHUP: TLS certificate reloaded/.test(relay.output().stderr)) resolve();
        else relay.child.stderr.once('data', check);
      };
      check();
    }),
    20_000,
  );
  const changed = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.2']);
  t.equal(changed.code, 1, 'the pinned client refuses the renewed key');
  t.match(changed.stderr, `presented TLS key ${renewed.fingerprint}, but`);
  t.match(changed.stderr, `accept it with --relay-fingerprint ${renewed.fingerprint}`);
  t.match(changed.stderr, /\(ERR_RELAY_FINGERPRINT_CHANGED\)\n$/);
  const accepted = await alphanet(['whoami', '--relay', url, '--relay-fingerprint', renewed.fingerprint, '--local-address', '127.0.0.2']);
  t.equal(accepted.code, 0, accepted.stderr);
  t.equal(accepted.stdout, first.stdout, 'accepted when told, with the same virtual IP');
  const again = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.2']);
  t.equal(again.code, 0, 'the new key is the pin from then on');
  relay.child.kill('SIGTERM');
  const [code] = await within('the relay to exit', relay.exited, 20_000);
  t.equal(code, 0);
});

t.test('with --plaintext the WebSocket port serves ws, and --relay ws://… needs no flag', async (t) => {
  const { run: relay, url, how } = await relayWithWs(t, ['--plaintext']);
  t.match(url, /^ws:\/\//);
  t.equal(how, 'plaintext');
  const client = await connect({ url, localAddress: '127.0.0.2' });
  t.match(client.virtualIp, /^\d+\.\d+\.\d+\.\d+$/, 'a library client connects through the printed URL');
  await client.close();
  const whoami = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.3']);
  t.equal(whoami.code, 0, whoami.stderr);
  t.match(whoami.stdout, /^\d+\.\d+\.\d+\.\d+\n$/, 'whoami over ws');
  const pinned = await alphanet(['whoami', '--relay', url, '--relay-fingerprint', `sha256:${'AB:'.repeat(31)}AB`]);
  t.equal(pinned.code, 1);
  t.match(pinned.stderr, /is plain WebSocket, with no key to check: give its wss:\/\/ URL.*ERR_INVALID_ARGUMENT/);
  const bundle = await fetch(url.replace(/^ws:/, 'http:').replace(/\/alphanet$/, '/alphanet.js'), { signal: AbortSignal.timeout(30_000) });
  t.equal(bundle.status, 200, 'the bundle over http');
  relay.child.kill('SIGTERM');
  const [code] = await within('the relay to exit', relay.exited, 20_000);
  t.equal(code, 0);
});

t.test('--ws-plaintext serves ws beside TLS on the TCP port', async (t) => {
  const { run: relay, url, how, listening } = await relayWithWs(t, ['--ws-plaintext']);
  t.match(listening, /\(TLS, fingerprint sha256:/, 'the TCP port serves TLS');
  t.match(url, /^ws:\/\//);
  t.equal(how, 'plaintext');
  const whoami = await alphanet(['whoami', '--relay', url, '--local-address', '127.0.0.3']);
  t.equal(whoami.code, 0, whoami.stderr);
  relay.child.kill('SIGTERM');
  const [code] = await within('the relay to exit', relay.exited, 20_000);
  t.equal(code, 0);
});

t.test('a --ws-trust-proxy entry that is no address or CIDR is refused, named', async (t) => {
  const relay = startMain(['--port', '0', '--ws-port', '0', '--ws-trust-proxy', '10.0.0.0/8,proxy.example']);
  const [code] = await relay.exited;
  t.not(code, 0);
  t.match(relay.output().stderr, /proxy\.example/);
  t.equal(relay.output().stdout, '');
});
