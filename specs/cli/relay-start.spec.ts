import t, { type Test } from 'tap';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { addRelayOptions, parseObserveCliOptions, parseRelayCliOptions } from '../../cli/relay-options.ts';
import { withObservation } from '../../cli/relay-observation.ts';
import { runRelay } from '../../cli/run-relay.ts';
import { openAddressStore } from '../../storage/index.ts';
import { canListen, freePort, startMain } from './relay-process.ts';
import { within } from '../helpers/wait.ts';

const EXIT_TIMEOUT_MS = 10_000;

/** Holds 127.0.0.1:port (any free one) until the spec ends, as another program would. */
async function occupiedPort(t: Test): Promise<number> {
  const holder = net.createServer().listen(0, '127.0.0.1');
  await once(holder, 'listening');
  t.teardown(() => new Promise((resolve) => holder.close(resolve)));
  return (holder.address() as net.AddressInfo).port;
}

async function tempDb(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-start-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'db.json');
}

t.test('--http-port already taken: the relay exits 1 naming the address, and frees its own port', async (t) => {
  const httpPort = await occupiedPort(t);
  const relayPort = await freePort();
  const run = startMain(['--port', String(relayPort), '--http-port', String(httpPort), '--db', await tempDb(t)]);
  t.teardown(() => void run.child.kill('SIGKILL'));
  const [code] = await within('exit after a failed start', run.exited, EXIT_TIMEOUT_MS);
  t.equal(code, 1);
  const { stdout, stderr } = run.output();
  t.equal(stdout, '', 'no `listening on`: the relay never became ready');
  t.match(stderr, `alphanet relay: cannot serve HTTP on 127.0.0.1:${httpPort}: the address is already in use (EADDRINUSE)\n`);
  t.equal(stderr.match(/EADDRINUSE/g)?.length, 1, 'the reason once, not repeated');
  t.ok(await canListen(relayPort), 'the relay port is free again');
});

t.test('--port already taken: exits 1 with the address', async (t) => {
  const relayPort = await occupiedPort(t);
  const run = startMain(['--port', String(relayPort), '--db', await tempDb(t)]);
  t.teardown(() => void run.child.kill('SIGKILL'));
  const [code] = await within('exit after a failed start', run.exited, EXIT_TIMEOUT_MS);
  t.equal(code, 1);
  t.equal(run.output().stdout, '');
  t.match(run.output().stderr, `127.0.0.1:${relayPort}`);
});

t.test('runRelay: a failed HTTP start closes the relay listener and the store before it rejects', async (t) => {
  const httpPort = await occupiedPort(t);
  const relayPort = await freePort();
  const db = await tempDb(t);
  const command = addRelayOptions(new Command());
  command.parse(['--port', String(relayPort), '--http-port', String(httpPort), '--db', db, '--log-level', 'silent'], { from: 'user' });
  const raw = command.opts();
  const written: string[] = [];
  const stdout = { write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream;
  await t.rejects(runRelay(parseRelayCliOptions(raw), withObservation(parseObserveCliOptions(raw), { stdout })), { code: 'ERR_HTTP_LISTEN' });
  t.same(written, [], 'nothing printed on stdout');
  t.ok(await canListen(relayPort), 'the relay port is free');
  const store = await openAddressStore({ path: db });
  t.teardown(() => store.close());
  t.pass('the store opens again: the failed start closed it');
});
