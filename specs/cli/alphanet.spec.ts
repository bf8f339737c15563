/** The `alphanet` command spawned as real processes against an in-process relay. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { clientFor, pseudoRandom, relayFor, sha256 } from '../client/fixtures.ts';
import { within } from '../helpers/wait.ts';

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function run(args: string[], input?: Uint8Array, onStart?: (stdout: NodeJS.ReadableStream) => void): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    // The in-process relay serves plain TCP (startRelay's default without a certificate).
    env: { ...process.env, ALPHANET_RELAY: '', ALPHANET_PLAINTEXT: '1' },
    timeout: 20_000,
  });
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
  t.match(help.stdout.toString(), /--relay <host\[:port\]\|url>[\s\S]*--local-address <ip>[\s\S]*-l, --listen/);
});

t.test('nc -l and nc move 3 MiB byte for byte in both directions', async (t) => {
  const relay = await relayFor(t);
  const relayFlag = ['--relay', `127.0.0.1:${relay.port}`];
  const up = pseudoRandom(7, 3 * 1024 * 1024);
  const down = pseudoRandom(8, 3 * 1024 * 1024);
  const ip = (await run(['whoami', ...relayFlag, '--local-address', '127.0.0.4'])).stdout.toString().trim();
  const listener = spawn(process.execPath, [BIN, 'nc', ...relayFlag, '--local-address', '127.0.0.4', '-l', '5000'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ALPHANET_PLAINTEXT: '1' },
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
  // Connect once the listener says it listens (on stderr, once bound).
  const listening = await within(
    'nc -l to say it listens',
    new Promise<string>((resolve, reject) => {
      listener.stderr.on('data', () => {
        const m = /^listening on (\S+)\n/m.exec(listenerErr);
        if (m) resolve(m[1] as string);
      });
      listener.once('close', () => reject(new Error(`nc -l exited before listening: ${listenerErr}`)));
    }),
    20_000,
  );
  t.equal(listening, `${ip}:5000`, 'nc -l names its virtual address and port');
  const r = await run(['nc', ...relayFlag, '--local-address', '127.0.0.5', ip, '5000'], up);
  t.equal(r.code, 0, r.stderr);
  // stderr is a pipe here: no progress line, only the summary, bytes each way.
  const summary = /^nc: (\d+) bytes sent, (\d+) bytes received in \d+\.\d\d s \(\d+(\.\d)? [KMG]?i?B\/s\)$/;
  t.match(r.stderr.trim(), summary, 'the connector ends with one summary line');
  t.same(summary.exec(r.stderr.trim())?.slice(1, 3), [String(up.length), String(down.length)]);
  const [code] = await listenerExit;
  t.equal(code, 0, listenerErr);
  const listenerSummary = listenerErr.trim().split('\n').at(-1) ?? '';
  t.same(summary.exec(listenerSummary)?.slice(1, 3), [String(down.length), String(up.length)], `listener summary: ${listenerSummary}`);
  t.notOk(/\x1b|\r/.test(listenerErr), 'no progress line when stderr is not a terminal');
  t.equal(sha256(Buffer.concat(listenerOut)), sha256(up), 'listener got every byte');
  t.equal(sha256(r.stdout), sha256(down), 'connector got every byte');
});
