/**
 * `--identity-mode key` (docs/PROTOCOL.md §2a, docs/STORAGE.md "Identity mode"), as users run it:
 * a relay process on a file store, clients over loopback TCP from chosen source addresses.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ErrorCode } from '../../protocol/index.ts';
import { connect, type Client, type ConnectOptions } from '../../actors/client/index.ts';
import { generateIdentity, signChallenge, type Identity } from '../../actors/client/identity.ts';
import { startRelay } from '../../actors/relay/index.ts';
import { openAddressStore, openMemoryAddressStore } from '../../storage/index.ts';
import { freePort, startMain, type RelayProcess } from '../cli/relay-process.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { within } from '../helpers/wait.ts';

const START_TIMEOUT_MS = 20_000;

async function tempDb(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-identity-mode-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'store.json');
}

/** A relay process on `db`, listening on a free port; stopped (SIGTERM, awaited) by `stop()`. */
async function relayProcess(t: Test, db: string, mode: string): Promise<{ port: number; run: RelayProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  // Plain TCP: what is under test is the address rule, not TLS to the relay (specs/cli/relay-tls.spec.ts).
  const run = startMain(['--port', String(port), '--db', db, '--identity-mode', mode, '--plaintext']);
  t.teardown(() => void run.child.kill('SIGKILL'));
  await within('relay listening', run.listening, START_TIMEOUT_MS);
  const stop = async (): Promise<void> => {
    run.child.kill('SIGTERM');
    await within('relay stopped', run.exited, START_TIMEOUT_MS);
  };
  return { port, run, stop };
}

async function client(t: Test, port: number, localAddress: string, options: ConnectOptions): Promise<Client> {
  const c = await connect({ host: '127.0.0.1', port, localAddress, ...options });
  t.teardown(() => c.close());
  return c;
}

t.test('key mode: two keys on one real IP get two addresses, kept across a restart and a move to another IP', async (t) => {
  const db = await tempDb(t);
  const alice: Identity = generateIdentity();
  const bob: Identity = generateIdentity();
  const first = await relayProcess(t, db, 'key');
  const a1 = await client(t, first.port, '127.0.0.2', { identity: alice });
  const b1 = await client(t, first.port, '127.0.0.2', { identity: bob });
  t.not(a1.virtualIp, b1.virtualIp, 'behind one NAT (one real IP), each key has its own address');
  // Each can reach the other: they are two hosts now, not one.
  const listener = await b1.listen(7);
  const accepted = listener.accept();
  const outgoing = await a1.connect({ address: b1.virtualIp, port: 7 });
  t.equal((await accepted).remoteAddress, a1.virtualIp);
  outgoing.close();
  await a1.close();
  await b1.close();
  await first.stop();

  const second = await relayProcess(t, db, 'key');
  const a2 = await client(t, second.port, '127.0.0.2', { identity: alice });
  t.equal(a2.virtualIp, a1.virtualIp, "alice's address survives the relay's restart");
  const b2 = await client(t, second.port, '127.0.0.3', { identity: bob });
  t.equal(b2.virtualIp, b1.virtualIp, 'bob keeps his address from another real IP (a laptop on a new network)');
  const fresh = await client(t, second.port, '127.0.0.2', { identity: generateIdentity() });
  t.not(fresh.virtualIp, a1.virtualIp, 'a new key from a known real IP gets a new address');
  t.not(fresh.virtualIp, b1.virtualIp);
  await second.stop();
});

t.test('key mode refuses a client that proves no key, and a wrong signature, with distinct codes', async (t) => {
  const store = await openMemoryAddressStore({ identityMode: 'key' });
  const relay = await startRelay({ store, host: '127.0.0.1', port: 0, identityMode: 'key' });
  t.teardown(async () => {
    await relay.close();
    await store.close();
  });
  await t.rejects(connect({ host: '127.0.0.1', port: relay.port, localAddress: '127.0.0.2', identity: false }), {
    code: 'ERR_RELAY_REJECTED',
    relayCode: ErrorCode.IdentityRequired,
    message: /IdentityRequired.*--identity-mode key/,
  });
  const raw = await RawClient.connect({ port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => raw.close());
  const claimed = generateIdentity();
  const signer = generateIdentity();
  await t.rejects(raw.helloWithProof((challenge) => ({ publicKey: claimed.publicKey, signature: signChallenge(signer, challenge) })));
  t.match(raw.queue.find((p) => p.type === 0x05), { code: ErrorCode.BadIdentityProof });
  t.equal(store.size, 0, 'nothing was allocated for either');
});

t.test('a store keeps its mode: opening it in the other one is refused with what each mode means', async (t) => {
  const db = await tempDb(t);
  const store = await openAddressStore({ path: db, identityMode: 'ip', shards: 4 });
  await store.findOrAllocate('127.0.0.2');
  await store.close();
  await t.rejects(openAddressStore({ path: db, identityMode: 'key' }), {
    code: 'ERR_IDENTITY_MODE_MISMATCH',
    message: /identity-mode ip store.*real IP address.*--identity-mode ip, or start a fresh store in mode key with another --db/,
  });
  const again = await openAddressStore({ path: db });
  t.equal(again.identityMode, 'ip', 'opened without a mode, a store keeps its own');
  await again.close();

  // The relay command says so and exits without serving.
  const run = startMain(['--port', String(await freePort()), '--db', db, '--identity-mode', 'key']);
  t.teardown(() => void run.child.kill('SIGKILL'));
  const [code] = await within('exit after a refused store', run.exited, START_TIMEOUT_MS);
  t.equal(code, 1);
  t.equal(run.output().stdout, '', 'never listening');
  t.match(run.output().stderr, /identity-mode ip store/);

  // startRelay refuses a store of the other mode too.
  const memory = await openMemoryAddressStore({ identityMode: 'key' });
  t.teardown(() => memory.close());
  await t.rejects(startRelay({ store: memory, host: '127.0.0.1', port: 0 }), { code: 'ERR_IDENTITY_MODE_MISMATCH' });
});

// Key mode with --cluster (the map in JetStream KV keyed by key, a relay of the other mode refused):
// specs/cluster/identity.spec.ts and specs/storage/nats-kv-store-key-mode.spec.ts.
