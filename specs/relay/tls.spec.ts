/**
 * TLS between client and relay (issue 12), over real loopback TCP: trust on first use, a changed
 * key refused, an explicit fingerprint, TLS 1.3 only, TLS and plain TCP on two ports, a new
 * certificate for new connections while old ones keep theirs, and a handshake that never ends.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { connect, ClientError, type Client, type ConnectOptions } from '../../actors/client/index.ts';
import { clientFor, cuttableProxy, openPair, pseudoRandom, readAll, relayFor, sha256 } from '../client/fixtures.ts';
import { knownRelaysFile, makeIdentity } from '../helpers/tls-identity.ts';
import { within } from '../helpers/wait.ts';

const WAIT_MS = 10_000;

/** Moves 256 KiB each way between two clients and checks it byte for byte. */
async function exchange(t: Test, server: Client, client: Client, port: number): Promise<void> {
  const [a, b] = await openPair(server, client, port);
  const up = pseudoRandom(port, 256 * 1024);
  const down = pseudoRandom(port + 1, 256 * 1024);
  const [gotUp, gotDown] = await within(
    'the exchange',
    Promise.all([readAll(b), readAll(a), a.send(up).then(() => a.end()), b.send(down).then(() => b.end())]),
    WAIT_MS,
  );
  t.equal(sha256(gotUp), sha256(up), 'bytes intact one way');
  t.equal(sha256(gotDown), sha256(down), 'and the other');
}

t.test('trust on first use: the first connection pins the key, the next ones are checked against it', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert } });
  t.equal(relay.tlsFingerprint, identity.fingerprint);
  t.match(relay.tlsFingerprint, /^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  const file = await knownRelaysFile(t);
  const pinned: unknown[] = [];
  const tlsOptions: ConnectOptions['tls'] = { knownRelaysFile: file, onPinned: (pin) => pinned.push(pin) };
  const first = await clientFor(t, relay, 2, { tls: tlsOptions });
  const where = `127.0.0.1:${relay.port}`;
  t.same(pinned, [{ relay: where, fingerprint: identity.fingerprint, file }], 'told once that it was pinned');
  t.match(await readFile(file, 'utf8'), new RegExp(`^${where} ${identity.fingerprint}$`, 'm'), 'the pin is in the file');
  const second = await clientFor(t, relay, 3, { tls: tlsOptions });
  t.equal(pinned.length, 1, 'a relay already pinned is not pinned again');
  await exchange(t, first, second, 7);
});

t.test('a changed key is refused with ERR_RELAY_FINGERPRINT_CHANGED, naming the file, both keys and how to accept', async (t) => {
  const [old, renewed] = [await makeIdentity(t), await makeIdentity(t)];
  const relay = await relayFor(t, { tls: { key: old.key, cert: old.cert } });
  const file = await knownRelaysFile(t);
  await (await clientFor(t, relay, 2, { tls: { knownRelaysFile: file } })).close();
  relay.setTls({ key: renewed.key, cert: renewed.cert });
  const before = relay.counters.bytesIn;
  const refused = await connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.2', tls: { knownRelaysFile: file } }).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.type(refused, ClientError);
  t.match(refused, { code: 'ERR_RELAY_FINGERPRINT_CHANGED', expected: old.fingerprint, actual: renewed.fingerprint, file });
  const message = (refused as Error).message;
  t.ok(message.includes(file), 'names the known-relays file');
  t.ok(message.includes(old.fingerprint) && message.includes(renewed.fingerprint), 'names both fingerprints');
  t.ok(message.includes(`--relay-fingerprint ${renewed.fingerprint}`), 'says how to accept the new one');
  t.equal(relay.counters.bytesIn, before, "the relay read not a byte from it: nothing was sent");

  // Accepting it: the explicit fingerprint connects, and becomes the pin.
  const accepted = await clientFor(t, relay, 2, { tls: { knownRelaysFile: file, fingerprint: renewed.fingerprint.toLowerCase() } });
  t.equal(accepted.state, 'connected', 'the fingerprint asked for (any case) is accepted');
  await clientFor(t, relay, 3, { tls: { knownRelaysFile: file } });
  t.match(await readFile(file, 'utf8'), new RegExp(`^127\\.0\\.0\\.1:${relay.port} ${renewed.fingerprint}$`, 'm'), 'the pin was replaced');
});

t.test('an explicit fingerprint: the right one connects with no pin before, a wrong one is refused', async (t) => {
  const [identity, other] = [await makeIdentity(t), await makeIdentity(t)];
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert } });
  const file = await knownRelaysFile(t);
  await t.rejects(
    connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.2', tls: { knownRelaysFile: file, fingerprint: other.fingerprint } }),
    { code: 'ERR_RELAY_FINGERPRINT_MISMATCH', expected: other.fingerprint, actual: identity.fingerprint },
  );
  await t.rejects(readFile(file), { code: 'ENOENT' }, 'a refused key is not pinned');
  await t.rejects(
    connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.2', tls: { knownRelaysFile: file, fingerprint: 'sha256:12:34' } }),
    { code: 'ERR_INVALID_ARGUMENT' },
  );
  const client = await clientFor(t, relay, 2, { tls: { knownRelaysFile: file, fingerprint: identity.fingerprint } });
  t.equal(client.state, 'connected');
});

t.test('TLS 1.3 only: a TLS 1.2 client is refused in the handshake', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert } });
  const socket = tls.connect({ host: relay.host, port: relay.port, maxVersion: 'TLSv1.2', rejectUnauthorized: false });
  t.teardown(() => socket.destroy());
  const [error] = (await within('the TLS 1.2 handshake to fail', once(socket, 'error').catch((e: unknown) => [e]), WAIT_MS)) as [NodeJS.ErrnoException];
  t.match(error.code, /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/, `refused: ${error.message}`);
  t.equal(relay.counters.clientsTotal, 0, 'never a client');
});

t.test('plain and TLS clients on the wrong kind of port get errors that say which to use', async (t) => {
  const identity = await makeIdentity(t);
  const secure = await relayFor(t, { tls: { key: identity.key, cert: identity.cert } });
  const plain = await relayFor(t);
  await t.rejects(connect({ host: secure.host, port: secure.port, localAddress: '127.0.0.2', connectTimeoutMs: WAIT_MS }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /serves TLS|connect without --plaintext/,
  });
  await t.rejects(connect({ host: plain.host, port: plain.port, localAddress: '127.0.0.2', tls: { knownRelaysFile: await knownRelaysFile(t) } }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /TLS 1\.3 handshake.*--plaintext/,
  });
});

t.test('TLS and plain TCP on two ports at once: clients of both reach each other', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, plaintextPort: 0 });
  t.type(relay.plaintextPort, 'number');
  t.not(relay.plaintextPort, relay.port);
  const overTls = await clientFor(t, relay, 2, { tls: { knownRelaysFile: await knownRelaysFile(t) } });
  const overTcp = await clientFor(t, { host: relay.host, port: relay.plaintextPort as number }, 3);
  await exchange(t, overTls, overTcp, 9);
  t.equal(relay.status().totals.clientsConnected, 2);
});

t.test('a new certificate (setTls) is what new connections get; connections already open keep working', async (t) => {
  const [old, renewed] = [await makeIdentity(t), await makeIdentity(t)];
  const relay = await relayFor(t, { tls: { key: old.key, cert: old.cert } });
  const oldClient = await clientFor(t, relay, 2, { tls: { knownRelaysFile: await knownRelaysFile(t) } });
  t.equal(relay.setTls({ key: renewed.key, cert: renewed.cert }), renewed.fingerprint);
  t.equal(relay.tlsFingerprint, renewed.fingerprint);
  t.throws(() => relay.setTls({ key: old.key, cert: renewed.cert }), 'a key that does not match its certificate is refused');
  t.equal(relay.tlsFingerprint, renewed.fingerprint, '…and the current one kept');
  const newClient = await clientFor(t, relay, 3, { tls: { knownRelaysFile: await knownRelaysFile(t), fingerprint: renewed.fingerprint } });
  await exchange(t, oldClient, newClient, 11);
});

t.test('a TCP connection that never finishes its TLS handshake holds its per-IP slot only until the handshake timeout', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, tlsHandshakeTimeoutMs: 300, maxConnectionsPerIp: 1 });
  const silent = net.connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.5' });
  t.teardown(() => silent.destroy());
  silent.on('error', () => {});
  await within('TCP connect', once(silent, 'connect'), WAIT_MS);
  const connectedAt = Date.now();
  const closed = once(silent, 'close');
  const file = await knownRelaysFile(t);
  // While it waits, its IP's one slot is taken: a real client from the same IP is refused.
  await t.rejects(connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.5', tls: { knownRelaysFile: file } }), {
    code: 'ERR_RELAY_REJECTED',
    message: /TooManyClients/,
  });
  await within('the relay to close the silent connection', closed, WAIT_MS);
  const held = Date.now() - connectedAt;
  // Timers never fire early: a close before ~300 ms would be something else cutting it.
  t.ok(held >= 250, `held until the 300 ms handshake timeout (${held} ms), then closed`);
  const client = await clientFor(t, relay, 5, { tls: { knownRelaysFile: file } });
  t.equal(client.state, 'connected', 'the slot is free again');
});

t.test('a changed key met while reconnecting closes the client with the error, instead of dialling it again and again', async (t) => {
  const [old, renewed] = [await makeIdentity(t), await makeIdentity(t)];
  const relay = await relayFor(t, { tls: { key: old.key, cert: old.cert } });
  const proxy = await cuttableProxy(t, relay);
  const client = await clientFor(t, proxy, 2, { tls: { knownRelaysFile: await knownRelaysFile(t) }, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  relay.setTls({ key: renewed.key, cert: renewed.cert });
  let dials = 0;
  const closed = new Promise<ReturnType<typeof client.actor.getSnapshot>>((resolve) => {
    const sub = client.actor.subscribe((snapshot) => {
      if (snapshot.matches({ reconnecting: 'dialing' })) dials++;
      if (snapshot.status === 'done') {
        sub.unsubscribe();
        resolve(snapshot);
      }
    });
  });
  proxy.cut();
  const snapshot = await within('the client to close', closed, WAIT_MS);
  t.match(snapshot.context.error, { code: 'ERR_RELAY_FINGERPRINT_CHANGED' });
  t.equal(dials, 1, 'one dial met the new key, and none followed');
});

t.test('TLS handshakes under way count against maxClients too', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, tlsHandshakeTimeoutMs: 300, maxClients: 1 });
  const silent = net.connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.6' });
  t.teardown(() => silent.destroy());
  silent.on('error', () => {});
  await within('TCP connect', once(silent, 'connect'), WAIT_MS);
  const closed = once(silent, 'close');
  const file = await knownRelaysFile(t);
  await t.rejects(connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.7', tls: { knownRelaysFile: file } }), {
    code: 'ERR_RELAY_REJECTED',
    message: /TooManyClients.*full/,
  });
  await within('the relay to close the silent connection', closed, WAIT_MS);
  const client = await clientFor(t, relay, 7, { tls: { knownRelaysFile: file } });
  t.equal(client.state, 'connected', 'room again once the handshake timed out');
});
