/**
 * End-to-end encryption (docs/SECURITY.md) between two clients over a real relay on loopback:
 * bytes intact both ways, half-close, the window still in force, pins, and a mismatch that fails.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { clientFor, openPair, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

const MIB = 1024 * 1024;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-e2e-'));
  // A peer refused mid-handshake may still be writing its pins file here as the test ends: retry
  // the removal (ENOTEMPTY) instead of failing the teardown.
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

t.test('8 MiB each way at once arrive intact; each end pins the other', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const [outgoing, accepted] = await openPair(server, client, 7);
  const up = pseudoRandom(1, 8 * MIB);
  const down = pseudoRandom(2, 8 * MIB);
  const [gotUp, gotDown] = await Promise.all([
    readAll(accepted),
    readAll(outgoing),
    (async () => {
      await outgoing.send(up);
      await outgoing.end();
    })(),
    (async () => {
      await accepted.send(down);
      await accepted.end();
    })(),
  ]);
  t.equal(sha256(gotUp), sha256(up), 'origin → target intact');
  t.equal(sha256(gotDown), sha256(down), 'target → origin intact');
  t.same(outgoing.peerKey, server.publicKey);
  const pins = await readFile(path.join(dir, 'b', 'known-peers'), 'utf8');
  t.equal(pins, `${server.virtualIp} ${server.fingerprint}\n`, 'the connector pinned the target on first use');
  t.equal(await readFile(path.join(dir, 'a', 'known-peers'), 'utf8'), `${client.virtualIp} ${client.fingerprint}\n`, 'and the target the connector');
});

t.test('8 MiB each way through the Duplex views at once (as the tunnels splice them) arrive intact, in order', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const [outgoing, accepted] = await openPair(server, client, 7);
  const up = Buffer.from(pseudoRandom(3, 8 * MIB));
  const down = Buffer.from(pseudoRandom(4, 8 * MIB));
  // The Duplex view takes chunks synchronously (takeChunk) between its awaited reads: the
  // order of what it is handed must be the order sent, whatever the timing.
  const through = async (conn: typeof outgoing, data: Buffer): Promise<Buffer> => {
    const duplex = conn.duplex();
    const chunks: Buffer[] = [];
    duplex.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise<void>((resolve, reject) => {
      duplex.once('end', resolve);
      duplex.once('error', reject);
    });
    // Writes of odd sizes, so records and frames never line up with the writes.
    for (let offset = 0; offset < data.length; offset += 100_003) {
      if (!duplex.write(data.subarray(offset, offset + 100_003))) await new Promise((resolve) => duplex.once('drain', resolve));
    }
    duplex.end();
    await ended;
    return Buffer.concat(chunks);
  };
  const [gotDown, gotUp] = await Promise.all([through(outgoing, up), through(accepted, down)]);
  t.equal(sha256(gotUp), sha256(up), 'origin → target intact and in order');
  t.equal(sha256(gotDown), sha256(down), 'target → origin intact and in order');
});

t.test('half-close under e2e: the peer still answers after our end, then ends cleanly', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const [outgoing, accepted] = await openPair(server, client, 7);
  await outgoing.send('question');
  await outgoing.end();
  t.equal(new TextDecoder().decode(await readAll(accepted)), 'question', 'the target reads to our end');
  await accepted.send('answer after your end');
  await accepted.end();
  t.equal(new TextDecoder().decode(await readAll(outgoing)), 'answer after your end', 'we still read after our end');
  const closed = new Promise<unknown>((resolve) => (outgoing.closed ? resolve(outgoing.error) : outgoing.once('close', resolve)));
  t.equal(await closed, undefined, 'a clean close');
});

t.test('a reader that stops reading stops the sender (backpressure counted through the sealed records)', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const [outgoing, accepted] = await openPair(server, client, 7);
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  let stalled = false;
  // Nobody reads `accepted`: sends must stop resolving within a few windows' worth.
  while (sent < 64 * MIB) {
    const settled = await Promise.race([outgoing.send(chunk).then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 500))]);
    if (!settled) {
      stalled = true;
      break;
    }
    sent += chunk.length;
  }
  t.ok(stalled, `the sender stalled after ${sent} bytes`);
  t.ok(sent <= 4 * MIB, `no more than the window and the buffers took (${sent} bytes)`);
  t.ok(accepted.bufferedBytes > 0);
  outgoing.destroy();
});

/** Fails unless `promise` settles within `ms`: a mismatch must never hang. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const MISMATCH_WAIT_MS = 5_000;

for (const plainSends of [true, false]) {
  t.test(`a --no-e2e connector to an e2e listener (${plainSends ? 'it sends first' : 'it waits to read'}): both refuse with ERR_E2E_MISMATCH, no plaintext taken`, async (t) => {
    const relay = await relayFor(t);
    const dir = await tempDir(t);
    const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
    const plain = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity'), e2e: false });
    const listener = await server.listen(7);
    let delivered = false;
    void listener.accept().then(
      () => (delivered = true),
      () => {},
    );
    const conn = await plain.connect({ address: server.virtualIp, port: 7 });
    if (plainSends) {
      // The e2e end's preamble may already have failed the connection: then the send says so.
      const sent = await conn.send('plaintext the listener must not take for data').then(() => undefined, (e: unknown) => e);
      if (sent !== undefined) t.match(sent, { code: 'ERR_E2E_MISMATCH' }, 'a send after the mismatch fails with it');
    }
    const error = await within(readAll(conn).then(() => undefined, (e: unknown) => e), MISMATCH_WAIT_MS, 'the plain end');
    t.match(error, { code: 'ERR_E2E_MISMATCH', message: new RegExp(`${server.virtualIp.replace(/\./g, '\\.')}:7 encrypts end to end and this end does not.*same --no-e2e setting`) }, 'the plain end is told what differs and the fix');
    t.notOk(delivered, 'the e2e listener never got a connection');
  });
}

t.test('an e2e connector to a --no-e2e listener: connect() and the listener’s first read both fail with ERR_E2E_MISMATCH', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const plain = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity'), e2e: false });
  const secure = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const listener = await plain.listen(7);
  const accepted = listener.accept();
  const connecting = secure.connect({ address: plain.virtualIp, port: 7 });
  await t.rejects(within(connecting, MISMATCH_WAIT_MS, 'connect()'), {
    code: 'ERR_E2E_MISMATCH',
    message: new RegExp(`${plain.virtualIp.replace(/\./g, '\\.')}:7 does not encrypt end to end.*this end does; both ends need the same --no-e2e setting`),
  });
  const conn = await accepted;
  const chunks: Uint8Array[] = [];
  const error = await within(
    (async () => {
      for await (const chunk of conn) chunks.push(chunk);
    })().then(() => undefined, (e: unknown) => e),
    MISMATCH_WAIT_MS,
    'the listener’s read',
  );
  t.match(error, { code: 'ERR_E2E_MISMATCH', message: /encrypts end to end and this end does not/ }, 'the plain end fails its first read');
  t.equal(chunks.length, 0, 'no byte of the preamble or the handshake reached the application');
});

t.test('close() with a send blocked on credit closes at once; the peer never mistakes the cut for a clean end', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const [outgoing, accepted] = await openPair(server, client, 7);
  const blocked = outgoing.send(pseudoRandom(3, 4 * MIB)).catch((error: unknown) => error);
  // Nobody reads `accepted` yet: the send waits for window. close() must not wait for the peer.
  const closed = new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('close() waited on the peer')), 5_000);
    outgoing.once('close', (error) => (clearTimeout(timer), resolve(error)));
  });
  outgoing.close();
  t.equal(await closed, undefined, 'our side closed cleanly, at once');
  t.match(await blocked, { code: 'ERR_SOCKET_STATE', message: /closed/ }, 'the blocked send failed instead of hanging, as without e2e');
  await t.rejects(readAll(accepted), { code: 'ERR_E2E_TRUNCATED' }, 'the peer learns its data was cut short');
});

t.test('a pins file that cannot be read refuses the connection, naming the file (a pin it hides could be a changed key)', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  // A directory where the file should be: reading it fails (EISDIR).
  const unreadable = path.join(dir, 'blocked', 'known-peers');
  await mkdir(unreadable, { recursive: true });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity'), knownPeers: unreadable });
  await server.listen(7);
  await t.rejects(client.connect({ address: server.virtualIp, port: 7 }), {
    code: 'ERR_IDENTITY',
    message: new RegExp(`cannot read the pins file ${unreadable.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*connection is refused`),
  });
});

t.test('a pins file that cannot be written does not fail the connection (warned instead)', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const warnings: string[] = [];
  const logger = { warn: (message: string) => warnings.push(String(message)), info() {}, debug() {}, error() {}, child() { return logger; } };
  // A file that does not exist (read: no pins yet) in a directory where nobody, not even root,
  // can create one (Linux's /proc): every write fails.
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity'), knownPeers: '/proc/self/alphanet-known-peers', logger: logger as never });
  const [outgoing] = await openPair(server, client, 7);
  t.equal(outgoing.peerFingerprint, server.fingerprint, 'connected, key checked against the relay');
  t.match(warnings.join('\n'), /could not record .* trusting it for this connection only/);
  outgoing.close();
});

t.test('send() not awaited, then close(): the peer reads it all and ends cleanly (as with e2e off)', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity') });
  const [outgoing, accepted] = await openPair(server, client, 7);
  const data = pseudoRandom(11, 200 * 1024);
  void accepted.send(data);
  accepted.close();
  const received = await readAll(outgoing);
  t.equal(sha256(received), sha256(data), 'every byte, then a clean end (no ERR_E2E_TRUNCATED)');
});

t.test('an address typed with a leading zero (10.0.0.02) connects as the normalised one: the handshake and the pin use 10.0.0.2', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'a', 'identity') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'b', 'identity'), knownPeers: path.join(dir, 'b-known-peers') });
  const listener = await server.listen(7);
  const typed = server.virtualIp.replace(/\.(\d+)$/, '.0$1');
  t.not(typed, server.virtualIp);
  const accepting = listener.accept();
  const conn = await client.connect({ address: typed, port: 7 });
  t.equal(conn.remoteAddress, server.virtualIp, 'the connection names the address as the relay does');
  t.equal(conn.peerFingerprint, server.fingerprint, 'the handshake completed with the announced key');
  const accepted = await accepting;
  await conn.send('via a typed address');
  await conn.end();
  t.equal(new TextDecoder().decode(await readAll(accepted)), 'via a typed address');
  t.match(await readFile(path.join(dir, 'b-known-peers'), 'utf8'), new RegExp(`^${server.virtualIp.replace(/\./g, '\\.')} `, 'm'), 'pinned under the normalised address');
  accepted.close();
  conn.close();
});
