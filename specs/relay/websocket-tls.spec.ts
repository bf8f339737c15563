/**
 * wss (issue 14: "TLS as on the TCP port"), over real loopback TCP: a relay with a certificate
 * serves its WebSocket port as wss with the same key, TLS 1.3 only; a Node client over wss pins
 * the relay's key as the TCP dial does (trust on first use, an explicit fingerprint, a changed
 * key refused before a byte is sent); a certificate replaced by setTls (SIGHUP) is what new wss
 * clients get; a handshake under way holds a slot of maxClients and of its IP until it ends;
 * the bundle is served over https on the same port.
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { connect, ClientError, type Client } from '../../actors/client/index.ts';
import { clientFor, openPair, pseudoRandom, readAll, relayFor, sha256 } from '../client/fixtures.ts';
import { knownRelaysFile, makeIdentity } from '../helpers/tls-identity.ts';
import { within } from '../observe/wait.ts';

const KIB = 1024;

/** Moves `bytes` each way through a virtual socket between two clients; both ends half-close. */
async function exchange(t: Test, server: Client, client: Client, port: number, bytes: number): Promise<void> {
  const [a, b] = await openPair(server, client, port);
  const up = pseudoRandom(port, bytes);
  const down = pseudoRandom(port + 1, bytes);
  const [gotUp, gotDown] = await within(
    'the exchange over wss and TLS',
    Promise.all([readAll(b), readAll(a), a.send(up).then(() => a.end()), b.send(down).then(() => b.end())]),
    60_000,
  );
  t.equal(gotUp.length, up.length, `every byte one way (${bytes})`);
  t.equal(sha256(gotUp), sha256(up), 'intact one way (SHA-256)');
  t.equal(gotDown.length, down.length, 'every byte the other way');
  t.equal(sha256(gotDown), sha256(down), 'intact the other way (SHA-256)');
}

t.test('a relay with a certificate serves wss: a Node client over wss and one over TCP TLS exchange bytes intact both ways', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0 } });
  const ws = relay.websocket!;
  t.equal(ws.tls, true, 'the WebSocket port serves TLS');
  t.match(ws.url, /^wss:\/\/127\.0\.0\.1:\d+\/alphanet$/);
  const file = await knownRelaysFile(t);
  const pinned: unknown[] = [];
  const overWss = await connect({ url: ws.url, localAddress: '127.0.0.2', tls: { knownRelaysFile: file, onPinned: (pin) => pinned.push(pin) } });
  t.teardown(() => overWss.close());
  const where = `127.0.0.1:${ws.port}`;
  t.same(pinned, [{ relay: where, fingerprint: identity.fingerprint, file }], 'the wss dial pinned the key on first use, as the TCP dial does');
  t.match(await readFile(file, 'utf8'), new RegExp(`^${where} ${identity.fingerprint}$`, 'm'), 'the pin is in the known-relays file');
  const overTcp = await clientFor(t, relay, 3, { tls: { knownRelaysFile: file } });
  t.equal(overWss.relay, ws.url);
  t.equal(relay.status().clients.find((c) => c.realIp === '127.0.0.2')?.state, 'ready', 'the wss client is a client with its real IP');
  await exchange(t, overWss, overTcp, 7, 1024 * KIB);
  await exchange(t, overTcp, overWss, 9, 1024 * KIB);
  // The pin is checked on the next dial: the same key connects without pinning again.
  const again = await connect({ url: ws.url, localAddress: '127.0.0.4', tls: { knownRelaysFile: file, onPinned: (pin) => pinned.push(pin) } });
  t.teardown(() => again.close());
  t.equal(pinned.length, 1, 'a pinned relay is not pinned again');
});

t.test('over wss a changed key is refused (ERR_RELAY_FINGERPRINT_CHANGED) before a byte is sent; a new certificate is what new wss clients get', async (t) => {
  const [old, renewed] = [await makeIdentity(t), await makeIdentity(t)];
  const relay = await relayFor(t, { tls: { key: old.key, cert: old.cert }, websocket: { port: 0 } });
  const url = relay.websocket!.url;
  const file = await knownRelaysFile(t);
  const first = await connect({ url, localAddress: '127.0.0.2', tls: { knownRelaysFile: file } });
  t.teardown(() => first.close());
  // As SIGHUP does: new connections get the new certificate, on the WebSocket port too.
  relay.setTls({ key: renewed.key, cert: renewed.cert });
  const before = { bytesIn: relay.counters.bytesIn, clients: relay.counters.clientsTotal };
  const refused = await connect({ url, localAddress: '127.0.0.3', tls: { knownRelaysFile: file } }).then(
    () => undefined,
    (error: unknown) => error,
  );
  t.type(refused, ClientError);
  t.match(refused, { code: 'ERR_RELAY_FINGERPRINT_CHANGED', expected: old.fingerprint, actual: renewed.fingerprint, file });
  const message = (refused as Error).message;
  t.ok(message.includes(file), 'names the known-relays file');
  t.ok(message.includes(`--relay-fingerprint ${renewed.fingerprint}`), 'says how to accept the new key');
  t.match(message, /Nothing was sent to it/);
  t.same({ bytesIn: relay.counters.bytesIn, clients: relay.counters.clientsTotal }, before, 'the relay never had it as a client: not even the upgrade was sent');

  // An explicit fingerprint that is not the relay's is refused; the right one connects and becomes the pin.
  await t.rejects(connect({ url, localAddress: '127.0.0.3', tls: { knownRelaysFile: file, fingerprint: old.fingerprint } }), {
    code: 'ERR_RELAY_FINGERPRINT_MISMATCH',
    expected: old.fingerprint,
    actual: renewed.fingerprint,
  });
  const accepted = await connect({ url, localAddress: '127.0.0.3', tls: { knownRelaysFile: file, fingerprint: renewed.fingerprint } });
  t.teardown(() => accepted.close());
  t.match(await readFile(file, 'utf8'), new RegExp(`^127\\.0\\.0\\.1:${relay.websocket!.port} ${renewed.fingerprint}$`, 'm'), 'the pin was replaced');
  await exchange(t, first, accepted, 11, 64 * KIB);
  t.equal(first.state, 'connected', 'the connection made under the old certificate keeps working');
});

t.test('wss is TLS 1.3 only, and a ws:// dial or a plain-ws client on the wss port gets words that say what to use', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0 } });
  const { host, port, url } = relay.websocket!;
  const old = tls.connect({ host, port, maxVersion: 'TLSv1.2', rejectUnauthorized: false });
  t.teardown(() => old.destroy());
  const [error] = (await within('the TLS 1.2 handshake to fail', once(old, 'error').catch((e: unknown) => [e]))) as [NodeJS.ErrnoException];
  t.match(error.code, /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/, `TLS 1.2 refused: ${error.message}`);
  const plain = await connect({ url: url.replace(/^wss:/, 'ws:'), localAddress: '127.0.0.2', connectTimeoutMs: 5_000 }).catch((e: unknown) => e);
  t.match(plain, { code: 'ERR_RELAY_UNREACHABLE' }, `ws:// to the wss port fails: ${(plain as Error).message}`);
  // Without a pin to check (tls: false), the system's authorities judge, as in a browser: a self-signed relay is refused.
  await t.rejects(connect({ url, localAddress: '127.0.0.2', tls: false, connectTimeoutMs: 5_000 }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /self[- ]signed/i,
  });
  // And TLS asked of a ws:// URL is refused in words, not silently dropped.
  await t.rejects(connect({ url: url.replace(/^wss:/, 'ws:'), tls: true }), { code: 'ERR_INVALID_ARGUMENT', message: /plain WebSocket.*wss:\/\// });
  t.equal(relay.counters.clientsTotal, 0, 'none of them became a client');
  // wss:// dialled at a relay that serves ws: the words name ws://.
  const plainRelay = await relayFor(t, { websocket: { port: 0 } });
  t.equal(plainRelay.websocket!.tls, false);
  t.match(plainRelay.websocket!.url, /^ws:\/\//, 'a relay without a certificate serves ws');
  await t.rejects(connect({ url: plainRelay.websocket!.url.replace(/^ws:/, 'wss:'), localAddress: '127.0.0.2', tls: { knownRelaysFile: await knownRelaysFile(t) } }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /TLS 1\.3 handshake.*use a ws:\/\/ URL/,
  });
});

t.test('a wss handshake under way holds a slot of its IP and of maxClients until it ends', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, {
    tls: { key: identity.key, cert: identity.cert },
    websocket: { port: 0 },
    tlsHandshakeTimeoutMs: 300,
    maxConnectionsPerIp: 1,
    maxClients: 2,
  });
  const { host, port, url } = relay.websocket!;
  const file = await knownRelaysFile(t);
  const silent = net.connect({ host, port, localAddress: '127.0.0.5' });
  t.teardown(() => silent.destroy());
  silent.on('error', () => {});
  await within('TCP connect to the wss port', once(silent, 'connect'));
  const closed = once(silent, 'close');
  // Its IP's one slot is taken by the handshake: a wss client from it is refused in words, and a TCP one too.
  await t.rejects(connect({ url, localAddress: '127.0.0.5', tls: { knownRelaysFile: file } }), {
    code: 'ERR_RELAY_REJECTED',
    message: /TooManyClients.*127\.0\.0\.5 already has 1 connections/,
  });
  await t.rejects(connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.5', tls: { knownRelaysFile: file } }), {
    code: 'ERR_RELAY_REJECTED',
    message: /TooManyClients/,
  });
  // One client and the handshake fill maxClients (2): a third, from another IP, is refused.
  const other = await connect({ url, localAddress: '127.0.0.6', tls: { knownRelaysFile: file } });
  t.teardown(() => other.close());
  await t.rejects(connect({ url, localAddress: '127.0.0.7', tls: { knownRelaysFile: file } }), {
    code: 'ERR_RELAY_REJECTED',
    message: /TooManyClients.*full \(2 clients\)/,
  });
  await within('the relay to cut the silent handshake at its timeout', closed);
  const client = await connect({ url, localAddress: '127.0.0.5', tls: { knownRelaysFile: file } });
  t.teardown(() => client.close());
  t.equal(client.state, 'connected', 'the slot is free again once the handshake timed out');
});

t.test('the bundle and the example page are served over https on the wss port', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0 } });
  const base = relay.websocket!.url.replace(/^wss:/, 'https:').replace(/\/alphanet$/, '');
  const get = (path: string): Promise<{ status: number; type: string; body: string; fingerprint: string }> =>
    within(
      `GET ${path} over https`,
      new Promise((resolve, reject) => {
        const req = https.get(`${base}${path}`, { rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (res) => {
          const chunks: Buffer[] = [];
          const socket = res.socket as tls.TLSSocket;
          const fingerprint = socket.getPeerCertificate().fingerprint256 ?? '';
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString(), fingerprint }));
        });
        req.on('error', reject);
      }),
      60_000,
    );
  const bundle = await get('/alphanet.js');
  t.equal(bundle.status, 200, 'the bundle');
  t.match(bundle.type, /javascript/);
  t.match(bundle.body, /connect/);
  const page = await get('/');
  t.equal(page.status, 200, 'the example page');
  t.match(page.type, /html/);
  t.equal(page.fingerprint, new X509Certificate(identity.cert).fingerprint256, "served with the relay's certificate");
  t.equal(relay.counters.clientsTotal, 0, 'plain requests are no clients');
});

t.test('websocket.plaintext: ws beside TLS on the TCP port, for a TLS-terminating proxy in front', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0, plaintext: true } });
  t.equal(relay.websocket!.tls, false);
  t.match(relay.websocket!.url, /^ws:\/\//, 'the WebSocket port serves ws');
  t.equal(relay.tlsFingerprint, identity.fingerprint, 'the TCP port still serves TLS');
  const overWs = await connect({ url: relay.websocket!.url, localAddress: '127.0.0.2' });
  t.teardown(() => overWs.close());
  const overTls = await clientFor(t, relay, 3, { tls: { knownRelaysFile: await knownRelaysFile(t) } });
  await exchange(t, overWs, overTls, 13, 64 * KIB);
});
