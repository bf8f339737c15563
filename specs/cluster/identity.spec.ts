/**
 * Identity and end-to-end encryption across the relays of a cluster (docs/CLUSTER.md "Identity
 * across relays", docs/SECURITY.md): three relay processes on one nats-server, Node clients with
 * their defaults (identity proved at Hello, e2e TLS on). A client on one relay and a host on
 * another exchange bytes intact both ways, each sees the other's real key, and pins hold; one bit
 * flipped on the NATS path fails both ends with the integrity error; in identity mode `key` the
 * address follows the key across relays, and a relay of the other mode is refused.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { connect, type Client, type ConnectOptions, type VirtualConnection } from '../../actors/client/index.ts';
import { startNatsServer, type NatsServer } from '../helpers/nats-server.ts';
import { natsTap, type NatsTap } from '../helpers/nats-tap.ts';
import { within } from '../helpers/wait.ts';
import { closedWith as closedWithin, readUntilFailure } from '../helpers/connection-end.ts';
import { startMain } from '../cli/relay-process.ts';
import { START_MS, clusterRelays, type Cleanup } from './cluster-relays.ts';
import { pseudoRandom, readAll, sha256 } from '../client/fixtures.ts';

/** How long a new host may take to be known to the other relays (presence and the map's watch). */
const ROUTE_KNOWN_MS = 20_000;
const WAIT_MS = 15_000;
const KIB = 1024;

async function tempDir(t: Cleanup): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-cluster-identity-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Relay processes on `urls` (one URL each, or the first for all); their ports. */
async function relays(t: Cleanup, ids: string[], urls: string[], extra: string[] = []): Promise<number[]> {
  return (await clusterRelays(t, ids, urls, extra)).map((relay) => relay.port);
}

/** A Node client with its defaults (identity in `dir/<name>`, e2e on), from `localAddress`. */
async function clientOn(t: Cleanup, port: number, localAddress: string, dir: string, name: string, options: ConnectOptions = {}): Promise<Client> {
  const client = await connect({ host: '127.0.0.1', port, localAddress, identity: path.join(dir, name, 'identity'), ...options });
  t.teardown(() => client.close());
  return client;
}

/** Codes of a connect that reached no host yet: the other relays learn of a new host within milliseconds. */
const NOT_YET = new Set(['ERR_TARGET_OFFLINE', 'ERR_NOT_LISTENING', 'ERR_CONNECTION_REFUSED']);

/** Connects `client` to address:port across relays once the route is known; any other failure is the spec's. */
async function connectOnceKnown(client: Client, address: string, port: number): Promise<VirtualConnection> {
  const deadline = performance.now() + ROUTE_KNOWN_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.connect({ address, port });
    } catch (error) {
      const code = (error as { code?: string }).code ?? '';
      if (!NOT_YET.has(code)) throw error;
      if (performance.now() > deadline) throw new Error(`${address}:${port} not reachable after ${attempt} attempts (last: ${code})`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

t.test('identity mode ip (the default): e2e across relays', async (t) => {
  const nats: NatsServer = await startNatsServer(t);
  // r1 reaches NATS through a tap: what it publishes for a cross-relay connection is recorded.
  const tap: NatsTap = await natsTap(t, nats.port);
  const [p1, p2, p3] = await relays(t, ['id1', 'id2', 'id3'], [tap.url, nats.url, nats.url]);
  const dir = await tempDir(t);

  t.test('a client on r1 and a host on r2, e2e on both ends: bytes intact both ways, true keys, pins written, no plaintext on NATS', async (t) => {
    const host = await clientOn(t, p2, '127.5.0.2', dir, 'host');
    const client = await clientOn(t, p1, '127.5.0.1', dir, 'client');
    const listener = await host.listen(7);
    const accepted = listener.accept();
    const outgoing = await connectOnceKnown(client, host.virtualIp, 7);
    const incoming = await within('the host to accept', accepted);
    t.same(outgoing.peerKey, host.publicKey, "the client was told the host's own identity key (PeerKey across relays)");
    t.same(incoming.peerKey, client.publicKey, "the host was told the client's own identity key");
    const up = pseudoRandom(11, 2 * KIB * KIB);
    const down = pseudoRandom(12, 1536 * KIB);
    const [gotUp, gotDown] = await Promise.all([
      readAll(incoming),
      readAll(outgoing),
      (async () => {
        await outgoing.send(up);
        await outgoing.end();
      })(),
      (async () => {
        await incoming.send(down);
        await incoming.end();
      })(),
    ]);
    t.equal(sha256(gotUp), sha256(up), 'client → host intact and in order');
    t.equal(sha256(gotDown), sha256(down), 'host → client intact and in order');
    t.equal(await readFile(path.join(dir, 'client', 'known-peers'), 'utf8'), `${host.virtualIp} ${host.fingerprint}\n`, 'the client pinned the host');
    t.equal(await readFile(path.join(dir, 'host', 'known-peers'), 'utf8'), `${client.virtualIp} ${client.fingerprint}\n`, 'and the host the client');
    const published = tap.linkBytes();
    t.ok(published.length >= up.length, `r1 published the client's bytes on its links (${published.length} bytes)`);
    t.equal(published.indexOf(Buffer.from(up.subarray(0, 64))), -1, 'the NATS path carried ciphertext only: no 64 plaintext bytes of it');
  });

  t.test('a key changed at a pinned virtual IP across relays is refused', async (t) => {
    const host = await clientOn(t, p3, '127.5.0.4', dir, 'pinned-host');
    await writeFile(path.join(dir, 'pins'), `${host.virtualIp} ${'A'.repeat(43)}\n`);
    const client = await clientOn(t, p1, '127.5.0.3', dir, 'pinning-client', { knownPeers: path.join(dir, 'pins') });
    await host.listen(7);
    await t.rejects(connectOnceKnown(client, host.virtualIp, 7), { code: 'ERR_E2E_PEER_KEY_CHANGED' });
  });

  t.test('one bit flipped on the NATS path fails both ends with ERR_E2E_INTEGRITY, no wrong byte delivered', async (t) => {
    const host = await clientOn(t, p2, '127.5.0.6', dir, 'tampered-host');
    const client = await clientOn(t, p1, '127.5.0.5', dir, 'tampered-client');
    const listener = await host.listen(7);
    const accepted = listener.accept();
    const sender = await connectOnceKnown(client, host.virtualIp, 7);
    const receiver = await within('the host to accept', accepted);
    const flipped = tap.flipNext();
    // Several link messages' worth (one carries at most 512 KiB): the first one, which the tap
    // flips, is then never the one that also carries the close_notify after the last data record.
    const data = pseudoRandom(13, 4096 * KIB);
    const reading = readUntilFailure(receiver);
    const sending = sender
      .send(data)
      .then(() => sender.end())
      .catch((error: unknown) => error);
    await within('the tap to flip a bit', flipped);
    const { bytes, error } = await within('the receiver to fail', reading);
    t.match(error, { code: 'ERR_E2E_INTEGRITY', message: /failed end-to-end authentication/ }, 'the receiver: integrity');
    t.ok(bytes.length < data.length, `the receiver got a prefix only (${bytes.length} bytes)`);
    t.equal(Buffer.compare(bytes, Buffer.from(data.subarray(0, bytes.length))), 0, 'every byte delivered is a byte that was sent, in place');
    t.match(await closedWith(sender), { code: 'ERR_E2E_INTEGRITY' }, 'the sender: integrity too (the receiver’s TLS alert crossed back)');
    await sending;
  });

  t.test('a host back on its relay with another identity: the next connection announces the new key', async (t) => {
    const first = await clientOn(t, p2, '127.5.0.8', dir, 'first-identity');
    const client = await clientOn(t, p1, '127.5.0.7', dir, 'asking-client', { knownPeers: false });
    await first.listen(9);
    const before = await connectOnceKnown(client, first.virtualIp, 9);
    t.same(before.peerKey, first.publicKey);
    before.destroy();
    await first.close();
    // Same machine (real IP, so same virtual IP in ip mode), another identity key.
    const second = await clientOn(t, p2, '127.5.0.8', dir, 'second-identity');
    t.equal(second.virtualIp, first.virtualIp);
    t.notSame(second.publicKey, first.publicKey);
    // Accepts whatever reaches it (the connection refused by r1 may have been accepted here first).
    const listener = await second.listen(9);
    const held: VirtualConnection[] = [];
    void (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    const deadline = performance.now() + ROUTE_KNOWN_MS;
    let after: VirtualConnection | undefined;
    // r1's stand-in for the host still speaks with the old key: one refused request replaces it.
    while (after === undefined) {
      after = await connectOnceKnown(client, second.virtualIp, 9).catch((error: { code?: string }) => {
        if (performance.now() > deadline) throw error;
        return undefined;
      });
    }
    t.same(after.peerKey, second.publicKey, 'the new key, never the old one');
  });

  t.test('a client back with a new key three times is still served across relays: stale stand-ins are closed (--max-connections-per-ip 2)', async (t) => {
    const [s1, s2] = await relays(t, ['tight1', 'tight2'], [nats.url], ['--max-connections-per-ip', '2']);
    // No pins on the host: it meets a new key at the client's address each round, on purpose.
    const host = await clientOn(t, s2, '127.5.1.2', dir, 'tight-host', { knownPeers: false });
    const listener = await host.listen(7);
    for (let round = 1; round <= 3; round++) {
      // Same machine, a new identity each time: on s2 each is a stand-in under 127.5.1.1.
      const client = await clientOn(t, s1, '127.5.1.1', dir, `tight-client-${round}`, { knownPeers: false });
      const accepted = listener.accept();
      const outgoing = await connectOnceKnown(client, host.virtualIp, 7);
      const incoming = await within('the host to accept', accepted);
      t.same(incoming.peerKey, client.publicKey, `round ${round}: the host is told this round's key`);
      const closed = closedWith(incoming);
      outgoing.destroy();
      await closed;
      await client.close();
    }
  });
});

t.test('identity mode key with --cluster', async (t) => {
  const nats = await startNatsServer(t);
  const [p1, p2, p3] = await relays(t, ['key1', 'key2', 'key3'], [nats.url], ['--identity-mode', 'key']);
  const dir = await tempDir(t);

  t.test('two clients on one real IP on two relays get two addresses; one keeps its address by key on a third relay', async (t) => {
    const a = await clientOn(t, p1, '127.6.0.1', dir, 'a');
    const b = await clientOn(t, p2, '127.6.0.1', dir, 'b');
    t.not(a.virtualIp, b.virtualIp, 'one real IP, two keys: two virtual IPs');
    const aIp = a.virtualIp;
    await a.close();
    const again = await clientOn(t, p3, '127.6.0.9', dir, 'a');
    t.equal(again.virtualIp, aIp, 'the same key from another real IP on another relay: the same virtual IP');
    // And across relays in key mode: the stand-ins are admitted by key too.
    const listener = await b.listen(5);
    const accepted = listener.accept();
    const outgoing = await connectOnceKnown(again, b.virtualIp, 5);
    const incoming = await within('b to accept', accepted);
    t.same(outgoing.peerKey, b.publicKey);
    t.same(incoming.peerKey, again.publicKey);
    t.equal(incoming.remoteAddress, aIp, "b sees the client's key-bound address");
    await outgoing.send('over three relays, by key');
    await outgoing.end();
    t.equal(new TextDecoder().decode(await readAll(incoming)), 'over three relays, by key');
  });

  t.test('a relay in identity mode ip on the key-mode cluster is refused, saying why', async (t) => {
    const run = startMain(['--port', '0', '--plaintext', '--cluster', nats.url, '--relay-id', 'wrong-mode']);
    t.teardown(() => void run.child.kill('SIGKILL'));
    const [code] = await within('the wrong-mode relay to exit', run.exited, START_MS);
    t.equal(code, 1);
    t.match(run.output().stderr, /identity-mode key map.*--identity-mode key/s);
    t.notMatch(run.output().stdout, /listening on/);
  });
});


/** The connection's error once it has closed, or a failure after WAIT_MS. */
function closedWith(conn: VirtualConnection): Promise<unknown> {
  return closedWithin(conn, WAIT_MS);
}
