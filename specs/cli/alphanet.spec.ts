/** The `alphanet` command spawned as real processes against an in-process relay. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { clientFor, pseudoRandom, relayFor, sha256 } from '../client/fixtures.ts';

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[], input?: Uint8Array, onStart?: (stdout: NodeJS.ReadableStream) => void): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ALPHANET_RELAY: '' }, timeout: 20_000 });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  // A command that fails before reading stdin closes the pipe; that is not this spec's error.
  child.stdin.on('error', () => {});
  onStart?.(child.stdout);
  if (input) child.stdin.end(input);
  // 'close', not 'exit': stdout may still hold data when the process has exited.
  return once(child, 'close').then(([code]) => ({ code: code as number | null, stdout: Buffer.concat(out), stderr: err }));
}

t.test('whoami prints the virtual IP alone', async (t) => {
  const relay = await relayFor(t);
  const r = await run(['whoami', '--relay', `127.0.0.1:${relay.port}`, '--local-address', '127.0.0.2']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout.toString(), /^10\.0\.\d+\.\d+\n$/);
});

t.test('nc errors: offline and not listening are named, non-zero exit', async (t) => {
  const relay = await relayFor(t);
  const relayFlag = ['--relay', `127.0.0.1:${relay.port}`];
  const offline = await run(['nc', ...relayFlag, '--local-address', '127.0.0.2', '10.0.250.1', '80'], new Uint8Array());
  t.equal(offline.code, 1);
  t.match(offline.stderr, /offline.*ERR_TARGET_OFFLINE/);
  // An online host with nothing on port 80.
  const ip = (await clientFor(t, relay, 3)).virtualIp;
  const notListening = await run(['nc', ...relayFlag, '--local-address', '127.0.0.2', ip, '80'], new Uint8Array());
  t.equal(notListening.code, 1);
  t.match(notListening.stderr, /nothing listens.*ERR_NOT_LISTENING/);
  const unreachable = await run(['whoami', '--relay', '127.0.0.1:1', '--local-address', '127.0.0.2']);
  t.equal(unreachable.code, 1);
  t.match(unreachable.stderr, /ERR_RELAY_UNREACHABLE/);
  const help = await run(['nc', '--help']);
  t.equal(help.code, 0);
  t.match(help.stdout.toString(), /--relay <host:port>[\s\S]*--local-address <ip>[\s\S]*-l, --listen/);
});

t.test('nc -l and nc move 3 MiB byte for byte in both directions', async (t) => {
  const relay = await relayFor(t);
  const relayFlag = ['--relay', `127.0.0.1:${relay.port}`];
  const up = pseudoRandom(7, 3 * 1024 * 1024);
  const down = pseudoRandom(8, 3 * 1024 * 1024);
  const ip = (await run(['whoami', ...relayFlag, '--local-address', '127.0.0.4'])).stdout.toString().trim();
  const listener = spawn(process.execPath, [BIN, 'nc', ...relayFlag, '--local-address', '127.0.0.4', '-l', '5000'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 20_000,
  });
  t.teardown(() => listener.kill());
  // Taken now: the listener may exit before the connector's run resolves.
  const listenerExit = once(listener, 'close');
  const listenerOut: Buffer[] = [];
  listener.stdout.on('data', (c: Buffer) => listenerOut.push(c));
  let listenerErr = '';
  listener.stderr.on('data', (c: Buffer) => (listenerErr += c));
  listener.stdin.on('error', () => {});
  listener.stdin.end(down);
  // Connect once the listener listens: retry on ERR_NOT_LISTENING (it may still be starting).
  // Bounded: a listener that died must fail the spec, not spin it until tap's timeout.
  let r: Run | undefined;
  for (let attempt = 0; attempt < 40; attempt++) {
    r = await run(['nc', ...relayFlag, '--local-address', '127.0.0.5', ip, '5000'], up);
    if (r.code === 0 || !/ERR_NOT_LISTENING|ERR_TARGET_OFFLINE/.test(r.stderr)) break;
  }
  if (r === undefined) throw new Error('unreachable');
  t.equal(r.code, 0, r.stderr);
  t.comment(`connector exit ${r.code}: ${r.stderr}`);
  const [code] = await listenerExit;
  t.equal(code, 0, listenerErr);
  t.equal(sha256(Buffer.concat(listenerOut)), sha256(up), 'listener got every byte');
  t.equal(sha256(r.stdout), sha256(down), 'connector got every byte');
});
