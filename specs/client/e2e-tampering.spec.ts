/**
 * A path that tampers with the ciphertext (docs/SECURITY.md "What the relay cannot do"): a proxy
 * between one client and a real relay flips a byte of a data frame, replays one, drops one, swaps two, or
 * drops the sealed end marker. Each end closes with a distinct e2e code, and no byte that was not sent
 * is ever delivered. Also: a changed key at a pinned address is refused.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { Client, VirtualConnection } from '../../actors/client/index.ts';
import { tamperingProxy, type Tampering } from '../helpers/tampering-proxy.ts';
import { closedWith as closedWithin, readUntilFailure } from '../helpers/connection-end.ts';
import { within } from '../helpers/wait.ts';
import { clientFor, pseudoRandom, relayFor } from './fixtures.ts';

const WAIT_MS = 10_000;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-e2e-tamper-'));
  // A peer refused mid-handshake may still be writing its pins file here as the test ends: retry
  // the removal (ENOTEMPTY) instead of failing the teardown.
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

/**
 * A connected pair whose sender's frames cross the tampering proxy: the connector by default, or
 * the acceptor (`from: 'acceptor'`, tampering from acceptor to connector).
 */
async function tamperedPair(
  t: Test,
  tampering: Tampering,
  from: 'connector' | 'acceptor' = 'connector',
): Promise<{ sender: VirtualConnection; receiver: VirtualConnection; proxy: Awaited<ReturnType<typeof tamperingProxy>>; server: Client }> {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const proxy = await tamperingProxy(t, relay.port, tampering);
  const viaProxy = { host: '127.0.0.1', port: proxy.port };
  const server = await clientFor(t, from === 'acceptor' ? viaProxy : relay, 2, { identity: path.join(dir, 'server', 'identity') });
  const client = await clientFor(t, from === 'connector' ? viaProxy : relay, 3, { identity: path.join(dir, 'client', 'identity') });
  const listener = await server.listen(7);
  const accepting = listener.accept();
  const connected = await client.connect({ address: server.virtualIp, port: 7 });
  const accepted = await accepting;
  return from === 'connector' ? { sender: connected, receiver: accepted, proxy, server } : { sender: accepted, receiver: connected, proxy, server };
}

const DONE = { flip: 'a data frame with a flipped byte', replay: 'a replayed data frame', drop: 'a dropped data frame', reorder: 'two data frames swapped' } as const;

for (const tampering of ['flip', 'replay', 'drop', 'reorder'] as const) {
  t.test(`${DONE[tampering]} closes both ends with ERR_E2E_INTEGRITY and delivers no wrong byte`, async (t) => {
    const { sender, receiver, proxy } = await tamperedPair(t, tampering);
    const data = pseudoRandom(7, 512 * 1024);
    const reading = readUntilFailure(receiver);
    const sending = sender.send(data).then(() => sender.end()).catch((error: unknown) => error);
    await within('the proxy to tamper', proxy.done, WAIT_MS);
    const { bytes, error } = await reading;
    t.match(error, { code: 'ERR_E2E_INTEGRITY', message: /failed end-to-end authentication/ }, 'the receiver: integrity');
    t.ok(bytes.length < data.length, `the receiver got a prefix only (${bytes.length} bytes)`);
    t.equal(Buffer.compare(bytes, Buffer.from(data.subarray(0, bytes.length))), 0, 'every byte delivered is a byte that was sent, in place');
    t.match(await closedWith(sender), { code: 'ERR_E2E_INTEGRITY' }, 'the sender: integrity too (SocketClosed E2eIntegrity from the receiver)');
    await sending;
    // The relay and the proxy saw ciphertext only: the plaintext's first 64 bytes never crossed.
    t.equal(proxy.seen().indexOf(Buffer.from(data.subarray(0, 64))), -1, 'no plaintext on the path');
  });
}

t.test('a dropped end marker (truncation) fails both ends with ERR_E2E_TRUNCATED, never a clean end', async (t) => {
  const { sender, receiver, proxy } = await tamperedPair(t, 'truncate');
  const data = pseudoRandom(8, 64 * 1024);
  const reading = readUntilFailure(receiver);
  await sender.send(data);
  await sender.end();
  await within('the proxy to drop the end marker', proxy.done, WAIT_MS);
  const { bytes, error } = await reading;
  t.match(error, { code: 'ERR_E2E_TRUNCATED', message: /without its end-to-end end marker/ });
  t.equal(Buffer.compare(bytes, Buffer.from(data.subarray(0, bytes.length))), 0, 'what arrived is a prefix of what was sent');
  // The reader closes with SocketClosed(E2eTruncated), which the relay passes on unchanged.
  t.match(await closedWith(sender), { code: 'ERR_E2E_TRUNCATED', message: /cut short on the way/ }, 'the sender learns its data was cut short, with the same code');
});

t.test('bytes after the end marker fail both ends with ERR_E2E_INTEGRITY', async (t) => {
  const { sender, receiver, proxy } = await tamperedPair(t, 'append');
  const data = pseudoRandom(9, 64 * 1024);
  const reading = readUntilFailure(receiver);
  await sender.send(data);
  await sender.end();
  await within('the proxy to append after the end marker', proxy.done, WAIT_MS);
  const { bytes } = await reading;
  t.equal(Buffer.compare(bytes, Buffer.from(data.subarray(0, bytes.length))), 0, 'what was delivered is a prefix of what was sent');
  t.match(await closedWith(receiver), { code: 'ERR_E2E_INTEGRITY', message: /after its end-to-end end marker/ }, 'the receiver fails');
  t.match(await closedWith(sender), { code: 'ERR_E2E_INTEGRITY' }, 'the sender learns it too (SocketClosed E2eIntegrity)');
});

t.test('from acceptor to connector: a flipped byte closes both ends with ERR_E2E_INTEGRITY and delivers no wrong byte', async (t) => {
  const { sender, receiver, proxy } = await tamperedPair(t, 'flip', 'acceptor');
  const data = pseudoRandom(10, 512 * 1024);
  const reading = readUntilFailure(receiver);
  const sending = sender.send(data).then(() => sender.end()).catch((error: unknown) => error);
  await within('the proxy to tamper', proxy.done, WAIT_MS);
  const { bytes, error } = await reading;
  t.match(error, { code: 'ERR_E2E_INTEGRITY' }, 'the connector: integrity');
  t.equal(Buffer.compare(bytes, Buffer.from(data.subarray(0, bytes.length))), 0, 'every byte delivered is a byte that was sent, in place');
  t.match(await closedWith(sender), { code: 'ERR_E2E_INTEGRITY' }, 'the acceptor: integrity too');
  await sending;
});

t.test('a stream that ends in the middle of a record fails both ends with ERR_E2E_TRUNCATED, delivering none of that record', async (t) => {
  const { sender, receiver, proxy } = await tamperedPair(t, 'cut');
  const data = pseudoRandom(12, 256 * 1024);
  const reading = readUntilFailure(receiver);
  await sender.send(data);
  await sender.end();
  await within('the proxy to cut a record', proxy.done, WAIT_MS);
  const { bytes, error } = await reading;
  t.match(error, { code: 'ERR_E2E_TRUNCATED' }, 'the receiver: truncated, never a clean end');
  t.equal(bytes.length % (64 * 1024), 0, `only whole records were delivered (${bytes.length} bytes)`);
  t.ok(bytes.length < data.length, 'a prefix only');
  t.equal(Buffer.compare(bytes, Buffer.from(data.subarray(0, bytes.length))), 0, 'what arrived is a prefix of what was sent');
  t.match(await closedWith(sender), { code: 'ERR_E2E_TRUNCATED' }, 'the sender learns it too');
});

t.test('a changed key at a pinned virtual IP is refused, with how to forget the pin', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'server', 'identity') });
  // The connector once met another key at the server's address.
  await writeFile(path.join(dir, 'client-known-peers'), `${server.virtualIp} ${'A'.repeat(43)}\n`);
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'client', 'identity'), knownPeers: path.join(dir, 'client-known-peers') });
  await server.listen(7);
  await t.rejects(client.connect({ address: server.virtualIp, port: 7 }), {
    code: 'ERR_E2E_PEER_KEY_CHANGED',
    message: new RegExp(`identity key changed.*alphanet pins forget ${server.virtualIp.replace(/\./g, '\\.')}`),
  });
});

t.test("a changed key at the acceptor's pin: the acceptor refuses, warns how to forget the pin, and its listener never gets the connection", async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const warnings: string[] = [];
  const logger = { warn: (first: unknown, second?: unknown) => warnings.push(`${String((first as { err?: Error })?.err?.message ?? first)} ${String(second ?? '')}`), info() {}, debug() {}, error() {}, child: () => logger };
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'client', 'identity') });
  // The acceptor once met another key at the connector's address.
  await writeFile(path.join(dir, 'server-known-peers'), `${client.virtualIp} ${'A'.repeat(43)}\n`);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'server', 'identity'), knownPeers: path.join(dir, 'server-known-peers'), logger: logger as never });
  const listener = await server.listen(7);
  let delivered = false;
  void listener.accept().then(() => (delivered = true), () => {});
  await t.rejects(client.connect({ address: server.virtualIp, port: 7 }), { code: /^ERR_E2E_/ }, 'the connector fails');
  t.match(warnings.join('\n'), new RegExp(`${client.virtualIp.replace(/\./g, '\\.')}'s identity key changed.*alphanet pins forget`), 'the acceptor warns, with how to forget the pin');
  t.notOk(delivered, 'the listener never got the connection');
});

/** The connection's error once it has closed, or a failure after WAIT_MS. */
function closedWith(conn: VirtualConnection): Promise<unknown> {
  return closedWithin(conn, WAIT_MS);
}
