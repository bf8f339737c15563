/** `--relay` and `--local-address` as the client commands take them, and how errors are said. */
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseRelayFlag, DEFAULT_RELAY_PORT } from '../../cli/client-options.ts';
import { run } from '../helpers/child-process.ts';
import { startMain } from './relay-process.ts';
import { isolateClientConfig } from '../helpers/client-config.ts';
import { within } from '../helpers/wait.ts';

// The relays these specs start serve TLS (the CLI default); clients pin them in a config dir of their own.
isolateClientConfig(t);

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));
const ENV = { ...process.env, ALPHANET_RELAY: '' };

function alphanet(args: string[]) {
  return run(process.execPath, [BIN, ...args], 20_000, { env: ENV });
}

t.test('parseRelayFlag: a host alone is port 1337; IPv6 in brackets or bare', async (t) => {
  t.equal(DEFAULT_RELAY_PORT, 1337);
  t.same(parseRelayFlag('127.0.0.1'), { host: '127.0.0.1', port: 1337 });
  t.same(parseRelayFlag('relay.example.org'), { host: 'relay.example.org', port: 1337 });
  t.same(parseRelayFlag('127.0.0.1:4000'), { host: '127.0.0.1', port: 4000 });
  t.same(parseRelayFlag('[::1]:4000'), { host: '::1', port: 4000 });
  t.same(parseRelayFlag('[::1]'), { host: '::1', port: 1337 });
  t.same(parseRelayFlag('::1'), { host: '::1', port: 1337 });
  t.same(parseRelayFlag('2001:db8::7'), { host: '2001:db8::7', port: 1337 });
  t.same(parseRelayFlag('wss://127.0.0.1:8443/alphanet'), { host: '127.0.0.1', port: 8443, url: 'wss://127.0.0.1:8443/alphanet' }, 'a wss:// URL');
  t.same(parseRelayFlag('ws://[::1]:8080'), { host: '::1', port: 8080, url: 'ws://[::1]:8080/alphanet' }, 'a ws:// URL, the path its /alphanet');
  for (const bad of ['', '127.0.0.1:0', '127.0.0.1:70000', 'host:port', '[not-v6]:1', '[::1]:', 'a b', 'http://127.0.0.1:1/', 'wss://h:1/#x']) {
    t.throws(() => parseRelayFlag(bad), { code: 'commander.invalidArgument' }, `"${bad}" is refused`);
  }
});

t.test('what the relay prints after `listening on` (IPv6 in brackets) is what --relay takes', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-relay6-'));
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  const relay = startMain(['--host', '::1', '--port', '0', '--db', path.join(dir, 'db.json')]);
  t.teardown(() => void relay.child.kill('SIGKILL'));
  const address = await within('the relay on ::1 to listen', relay.listening, 20_000);
  t.match(address, /^\[::1\]:\d+$/, `printed ${address}`);
  const bracketed = await alphanet(['whoami', '--relay', address]);
  t.equal(bracketed.code, 0, bracketed.stderr);
  t.match(bracketed.stdout, /^\d+\.\d+\.\d+\.\d+\n$/, 'whoami through [::1]:port');
});

t.test('a host alone dials port 1337', async (t) => {
  const r = await alphanet(['whoami', '--relay', '127.0.0.1', '--local-address', '127.0.0.2']);
  // Whatever holds 127.0.0.1:1337 on this machine (usually nothing), the address dialled is it.
  if (r.code !== 0) t.match(r.stderr, /127\.0\.0\.1:1337/, r.stderr);
  else t.match(r.stdout, /^\d+\.\d+\.\d+\.\d+\n$/);
  const bad = await alphanet(['whoami', '--relay', 'host:port']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /"host:port" is not a relay address/);
});

t.test('errors say their code once: a system error, a bad --local-address', async (t) => {
  const holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => void holder.close());
  const taken = (holder.address() as net.AddressInfo).port;
  // The port is bound before the relay (none here) is dialled: the clash is the error, at once.
  const clash = await alphanet(['forward', '--relay', '127.0.0.1:1', String(taken), '10.0.0.9:80']);
  t.equal(clash.code, 1);
  t.equal(clash.stderr, `alphanet: cannot listen: EADDRINUSE: address already in use 127.0.0.1:${taken} (ERR_LISTEN_FAILED)\n`);
  t.equal(clash.stderr.match(/EADDRINUSE/g)?.length, 1, 'EADDRINUSE said once');
  const banana = await alphanet(['whoami', '--relay', '127.0.0.1:1', '--local-address', 'banana']);
  t.equal(banana.code, 1);
  t.match(banana.stderr, /^error: option '--local-address <ip>' argument 'banana' is invalid\. "banana" is not an IP address of this machine/);
});
