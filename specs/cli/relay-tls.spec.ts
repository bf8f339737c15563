/**
 * TLS as `alphanet relay` / `npm start` and the client commands use it by default (issue 12), as
 * real processes on loopback: the key and certificate made on first start and reused, trust on
 * first use and a changed key refused, --plaintext on both sides, both ports at once, and SIGHUP.
 */
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { certificateFingerprint } from '../../actors/relay/index.ts';
import { connect, type Client } from '../../actors/client/index.ts';
import { TLS_CERT_FILE, TLS_KEY_FILE } from '../../cli/relay-tls.ts';
import { run, type Ran } from '../helpers/child-process.ts';
import { isolateClientConfig } from '../helpers/client-config.ts';
import { makeIdentity } from '../helpers/tls-identity.ts';
import { openPair, pseudoRandom, readAll, sha256 } from '../client/fixtures.ts';
import { startMain, type RelayProcess } from './relay-process.ts';
import { within } from '../helpers/wait.ts';

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));
const WAIT_MS = 20_000;
const TLS_LINE = /^listening on (127\.0\.0\.1:(\d+)) \(TLS, fingerprint (sha256:(?:[0-9A-F]{2}:){31}[0-9A-F]{2})(?:; plaintext on (127\.0\.0\.1:\d+))?\)\n/;

const configDir = isolateClientConfig(t);

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-relay-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The relay as a process; resolves with its ready line's parts. */
async function relay(t: Test, args: string[]): Promise<{ run: RelayProcess; address: string; fingerprint: string; plaintext?: string }> {
  const started = startMain(args, { ALPHANET_LOG_LEVEL: 'info' });
  t.teardown(() => void started.child.kill('SIGKILL'));
  await within('listening on', started.listening, WAIT_MS);
  const line = started.output().stdout;
  const m = TLS_LINE.exec(line);
  if (!m) throw new Error(`not a TLS ready line: ${JSON.stringify(line)}`);
  return { run: started, address: m[1] as string, fingerprint: m[3] as string, plaintext: m[4] };
}

/** SIGTERM, and the graceful stop's exit status 0. */
async function stop(started: RelayProcess): Promise<void> {
  started.child.kill('SIGTERM');
  const [code] = await within('the relay to exit', started.exited, WAIT_MS);
  if (code !== 0) throw new Error(`the relay exited ${code}: ${started.output().stderr}`);
}

function whoami(args: string[]): Promise<Ran> {
  return run(process.execPath, [BIN, 'whoami', '--local-address', '127.0.0.2', ...args], WAIT_MS, { env: { ...process.env, ALPHANET_RELAY: '' } });
}

/** Resolves when the relay's stderr (its log) matches `pattern`. */
function logged(started: RelayProcess, pattern: RegExp): Promise<void> {
  return within(
    `a log line matching ${pattern}`,
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (pattern.test(started.output().stderr)) resolve();
      };
      started.child.stderr.on('data', check);
      check();
    }),
    WAIT_MS,
  );
}

t.test('first start makes a key (0600) and a certificate beside --db and prints their fingerprint; the next start reuses them', async (t) => {
  const dir = await tempDir(t);
  const db = path.join(dir, 'db.json');
  const first = await relay(t, ['--port', '0', '--db', db]);
  const keyFile = path.join(dir, TLS_KEY_FILE);
  const certFile = path.join(dir, TLS_CERT_FILE);
  t.equal((await stat(keyFile)).mode & 0o777, 0o600, 'only the owner may read the key');
  const cert = await readFile(certFile, 'utf8');
  t.equal(first.fingerprint, certificateFingerprint(cert), 'the printed fingerprint is the certificate key’s');
  const key = await readFile(keyFile, 'utf8');
  await stop(first.run);
  const second = await relay(t, ['--port', '0', '--db', db]);
  t.equal(second.fingerprint, first.fingerprint, 'same fingerprint after a restart');
  t.equal(await readFile(keyFile, 'utf8'), key, 'the key was not made again');
  t.equal(await readFile(certFile, 'utf8'), cert, 'nor the certificate');
  await stop(second.run);
});

t.test('a client pins the relay on first use and connects again; a changed key is refused, saying how to accept it', async (t) => {
  const dir = await tempDir(t);
  const db = path.join(dir, 'db.json');
  const first = await relay(t, ['--port', '0', '--db', db]);
  const pinning = await whoami(['--relay', first.address]);
  t.equal(pinning.code, 0, pinning.stderr);
  t.match(pinning.stdout, /^100\.64\.\d+\.\d+\n$/);
  const known = path.join(configDir, 'known-relays');
  t.match(pinning.stderr, `trusting the relay at ${first.address} on first use: ${first.fingerprint} (pinned in ${known})`);
  t.match(await readFile(known, 'utf8'), `${first.address} ${first.fingerprint}\n`);
  const again = await whoami(['--relay', first.address]);
  t.equal(again.code, 0, again.stderr);
  t.equal(again.stdout, pinning.stdout, 'the same virtual IP');
  t.equal(again.stderr, '', 'nothing to say the second time');

  // The relay loses its key (a new machine, a wiped data directory) and comes back on the same port.
  await stop(first.run);
  await rm(path.join(dir, TLS_KEY_FILE));
  await rm(path.join(dir, TLS_CERT_FILE));
  const second = await relay(t, ['--port', first.address.split(':')[1] as string, '--db', db]);
  t.not(second.fingerprint, first.fingerprint, 'a new key');
  const refused = await whoami(['--relay', first.address]);
  t.equal(refused.code, 1);
  t.equal(refused.stdout, '');
  t.match(refused.stderr, /\(ERR_RELAY_FINGERPRINT_CHANGED\)\n$/);
  for (const part of [known, first.fingerprint, second.fingerprint, `--relay-fingerprint ${second.fingerprint}`]) t.match(refused.stderr, part);
  const wrong = await whoami(['--relay', first.address, '--relay-fingerprint', first.fingerprint]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /ERR_RELAY_FINGERPRINT_MISMATCH/);
  const accepted = await whoami(['--relay', first.address, '--relay-fingerprint', second.fingerprint]);
  t.equal(accepted.code, 0, accepted.stderr);
  t.equal(accepted.stdout, pinning.stdout, 'the same store, the same virtual IP');
  const after = await whoami(['--relay', first.address]);
  t.equal(after.code, 0, `the new key is the pin now: ${after.stderr}`);
  await stop(second.run);
});

t.test('--plaintext on both sides is plain TCP; each side alone fails with a message that says so', async (t) => {
  const dir = await tempDir(t);
  const started = startMain(['--plaintext', '--port', '0', '--db', path.join(dir, 'db.json')]);
  t.teardown(() => void started.child.kill('SIGKILL'));
  const address = await within('listening on', started.listening, WAIT_MS);
  t.equal(started.output().stdout, `listening on ${address} (plaintext)\n`);
  const plain = await whoami(['--relay', address, '--plaintext']);
  t.equal(plain.code, 0, plain.stderr);
  t.match(plain.stdout, /^100\.64\.\d+\.\d+\n$/);
  const overTls = await whoami(['--relay', address]);
  t.equal(overTls.code, 1);
  t.match(overTls.stderr, /TLS 1\.3 handshake.*--plaintext.*\(ERR_RELAY_UNREACHABLE\)/);
  const tlsRelay = await relay(t, ['--port', '0', '--db', path.join(dir, 'db2.json')]);
  const plainToTls = await whoami(['--relay', tlsRelay.address, '--plaintext']);
  t.equal(plainToTls.code, 1);
  t.match(plainToTls.stderr, /TLS.*without --plaintext.*\(ERR_RELAY_UNREACHABLE\)/);
  await t.resolves(readFile(path.join(dir, TLS_KEY_FILE)), 'the TLS relay made its key');
  await stop(started);
  await stop(tlsRelay.run);
});

t.test('--plaintext-port serves plain TCP beside TLS: one store, one virtual IP on both', async (t) => {
  const dir = await tempDir(t);
  const both = await relay(t, ['--port', '0', '--plaintext-port', '0', '--db', path.join(dir, 'db.json')]);
  t.ok(both.plaintext, `the ready line names the plain port: ${both.run.output().stdout}`);
  const overTls = await whoami(['--relay', both.address]);
  const overTcp = await whoami(['--relay', both.plaintext as string, '--plaintext']);
  t.equal(overTls.code, 0, overTls.stderr);
  t.equal(overTcp.code, 0, overTcp.stderr);
  t.equal(overTcp.stdout, overTls.stdout, 'the same real IP gets the same virtual IP on either port');
  await stop(both.run);
});

t.test('SIGHUP reads --tls-cert/--tls-key again: new connections get the renewed key, open ones keep working; a bad reload keeps it', async (t) => {
  const [old, renewed] = [await makeIdentity(t), await makeIdentity(t)];
  const dir = await tempDir(t);
  const [certFile, keyFile] = [path.join(dir, 'relay.crt'), path.join(dir, 'relay.key')];
  await copyFile(old.certFile, certFile);
  await copyFile(old.keyFile, keyFile);
  const started = await relay(t, ['--port', '0', '--db', path.join(dir, 'db.json'), '--tls-cert', certFile, '--tls-key', keyFile]);
  t.equal(started.fingerprint, old.fingerprint, 'serves the given certificate');
  const [host, port] = [started.address.split(':')[0] as string, Number(started.address.split(':')[1])];
  const known = path.join(dir, 'known-relays');
  const client = (n: number, fingerprint: string): Promise<Client> =>
    connect({ host, port, localAddress: `127.0.0.${n}`, tls: { knownRelaysFile: known, fingerprint } }).then((c) => {
      t.teardown(() => c.close());
      return c;
    });
  const before = await client(2, old.fingerprint);

  await copyFile(renewed.certFile, certFile);
  await copyFile(renewed.keyFile, keyFile);
  started.run.child.kill('SIGHUP');
  await logged(started.run, /SIGHUP: TLS certificate reloaded/);
  await t.rejects(client(3, old.fingerprint), { code: 'ERR_RELAY_FINGERPRINT_MISMATCH', actual: renewed.fingerprint }, 'new connections get the renewed key');
  const after = await client(3, renewed.fingerprint);
  const [a, b] = await openPair(before, after, 7);
  const bytes = pseudoRandom(7, 128 * 1024);
  const [got] = await within('bytes from the old connection', Promise.all([readAll(b), a.send(bytes).then(() => a.end())]), WAIT_MS);
  t.equal(sha256(got), sha256(bytes), 'the connection made before the reload still carries bytes');

  await writeFile(certFile, 'not a certificate\n');
  started.run.child.kill('SIGHUP');
  await logged(started.run, /SIGHUP: TLS reload failed, keeping the current certificate: .*relay\.crt/);
  const still = await client(4, renewed.fingerprint);
  t.equal(still.state, 'connected', 'the renewed key is still served');
  t.equal(started.run.child.exitCode, null, 'the relay runs on');
  await stop(started.run);
});
