import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { PacketType, PROTOCOL_VERSION, encodePacket } from '../../protocol/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startMain } from './relay-process.ts';
import { within } from '../helpers/wait.ts';

const EXIT_TIMEOUT_MS = 10_000;

/**
 * A client that never closes its side (half-open, ignoring the relay's FIN), so a graceful stop
 * waits its full linger (CLOSE_LINGER_MS, 1 s) for it. Resolves once the relay has answered Hello.
 */
async function stubbornClient(t: Test, address: string): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port: Number(address.split(':')[1]), localAddress: '127.0.0.2', allowHalfOpen: true });
  t.teardown(() => socket.destroy());
  socket.on('error', () => {});
  await within('connect to the relay', once(socket, 'connect'), EXIT_TIMEOUT_MS);
  socket.write(encodePacket({ type: PacketType.Hello, version: PROTOCOL_VERSION }));
  await within('VirtualIP from the relay', once(socket, 'data'), EXIT_TIMEOUT_MS);
  return socket;
}

async function tempDb(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-signals-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'db.json');
}

t.test('SIGTERM exits after stderr and stdout have lost their reader (`2>&1 | head -2`)', async (t) => {
  // info, so the relay has lines to log into the dead pipe while it stops ("signal received", "relay stopped").
  const run = startMain(['--plaintext', '--port', '0', '--db', await tempDb(t), '--log-level', 'info']);
  t.teardown(() => void run.child.kill('SIGKILL'));
  await within('listening on', run.listening, EXIT_TIMEOUT_MS);
  run.child.stderr.destroy();
  run.child.stdout.destroy();
  // At once, so the stop is over before any failed write has been reported: the exit itself meets EPIPE.
  run.child.kill('SIGTERM');
  const [code, signal] = await within('exit after SIGTERM with stderr closed', run.exited, EXIT_TIMEOUT_MS);
  t.equal(signal, null, 'exited by itself, not killed');
  t.equal(code, 0, 'a graceful stop');
});

t.test('a second signal during a graceful stop exits at once (128 + signal number)', async (t) => {
  const run = startMain(['--plaintext', '--port', '0', '--db', await tempDb(t)]);
  t.teardown(() => void run.child.kill('SIGKILL'));
  const client = await stubbornClient(t, await within('listening on', run.listening, EXIT_TIMEOUT_MS));
  run.child.kill('SIGTERM');
  // The relay's FIN after Error(RelayShuttingDown): the stop is under way, waiting on this client.
  await within('the relay ending the connection', once(client, 'end'), EXIT_TIMEOUT_MS);
  run.child.kill('SIGINT');
  const [code] = await within('exit after the second signal', run.exited, EXIT_TIMEOUT_MS);
  t.equal(code, 130, 'SIGINT as the second signal: 128 + 2, not the graceful 0');
});

t.test('a graceful stop that outlasts --stop-timeout exits 1', async (t) => {
  const run = startMain(['--plaintext', '--port', '0', '--db', await tempDb(t), '--stop-timeout', '100']);
  t.teardown(() => void run.child.kill('SIGKILL'));
  await stubbornClient(t, await within('listening on', run.listening, EXIT_TIMEOUT_MS));
  run.child.kill('SIGTERM');
  const [code] = await within('exit after the stop timeout', run.exited, EXIT_TIMEOUT_MS);
  t.equal(code, 1, 'the 1 s linger for the client outlasts the 100 ms stop timeout');
  t.match(run.output().stderr, /graceful stop took too long/);
});
