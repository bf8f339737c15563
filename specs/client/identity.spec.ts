/**
 * Identity keys (docs/PROTOCOL.md §2a) over real loopback TCP: the key file a client keeps, the
 * proof at Hello, a bad proof refused, and each end of a connection hearing the other's key.
 */
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ErrorCode, PacketType } from '../../protocol/index.ts';
import { defaultIdentityPath, generateIdentity, loadIdentity, signChallenge } from '../../actors/client/identity.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { clientFor, openPair, relayFor } from './fixtures.ts';

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-identity-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the identity file is made once, mode 0600, and read back as the same key', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'nested', 'identity');
  const first = await loadIdentity(file);
  t.equal((await stat(file)).mode & 0o777, 0o600, 'only its owner may read it');
  t.equal((await stat(path.dirname(file))).mode & 0o777, 0o700, 'its directory is made private too');
  t.match(await readFile(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----/, 'PKCS#8 PEM');
  const again = await loadIdentity(file);
  t.equal(again.fingerprint, first.fingerprint, 'the same key on the next start');
  t.equal(first.publicKey.length, 32);
  // Two processes starting at once agree on one key (the file is linked into place whole).
  const racing = path.join(dir, 'race');
  const [a, b] = await Promise.all([loadIdentity(racing), loadIdentity(racing)]);
  t.equal(a.fingerprint, b.fingerprint, 'concurrent first starts share one key');
});

t.test('the default file follows ALPHANET_CONFIG_DIR, then XDG_CONFIG_HOME, then ~/.config', async (t) => {
  t.equal(defaultIdentityPath({ ALPHANET_CONFIG_DIR: '/x/y', XDG_CONFIG_HOME: '/z' }), path.resolve('/x/y/identity'));
  t.equal(defaultIdentityPath({ XDG_CONFIG_HOME: '/z' }), path.resolve('/z/alphanet/identity'));
  t.equal(defaultIdentityPath({}), path.join(os.homedir(), '.config', 'alphanet', 'identity'));
});

t.test('a key file others can read, or one that is not a key, is refused with ERR_IDENTITY', async (t) => {
  const dir = await tempDir(t);
  const open = path.join(dir, 'open');
  await loadIdentity(open);
  await chmod(open, 0o644);
  await t.rejects(loadIdentity(open), { code: 'ERR_IDENTITY', message: /readable by others.*chmod 600/ });
  const junk = path.join(dir, 'junk');
  await writeFile(junk, 'not a key', { mode: 0o600 });
  await t.rejects(loadIdentity(junk), { code: 'ERR_IDENTITY', message: /not an Ed25519 private key/ });
});

t.test('each end of a connection hears the key the other proved at Hello', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const server = await clientFor(t, relay, 2, { identity: path.join(dir, 'server') });
  const client = await clientFor(t, relay, 3, { identity: path.join(dir, 'client') });
  t.equal(server.fingerprint, (await loadIdentity(path.join(dir, 'server'))).fingerprint, 'the client uses the file it was given');
  const [outgoing, accepted] = await openPair(server, client, 7);
  t.same(outgoing.peerKey, server.publicKey, "the origin hears the target's key");
  t.same(accepted.peerKey, client.publicKey, "the target hears the origin's key");
  t.equal(accepted.peerFingerprint, client.fingerprint);
  outgoing.close();
});

t.test('a client without an identity neither hears nor gives a key, and still connects', async (t) => {
  const relay = await relayFor(t);
  // Both opt out of e2e: without a key there is nothing to encrypt with.
  const server = await clientFor(t, relay, 2, { identity: generateIdentity(), e2e: false });
  const plain = await clientFor(t, relay, 3, { identity: false });
  t.equal(plain.publicKey, undefined);
  const [outgoing, accepted] = await openPair(server, plain, 7);
  t.equal(outgoing.peerKey, undefined, 'a version-1 client hears no PeerKey');
  t.equal(accepted.peerKey, undefined, 'nobody hears a key that was never proved');
  outgoing.close();
});

t.test('a proof whose signature does not verify is refused with Error BadIdentityProof', async (t) => {
  const relay = await relayFor(t);
  const raw = await RawClient.connect({ port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => raw.close());
  const honest = generateIdentity();
  const other = generateIdentity();
  // Signed by another key than the one claimed.
  const answer = raw.helloWithProof((challenge) => ({ publicKey: honest.publicKey, signature: signChallenge(other, challenge) }));
  await t.rejects(answer, /closed/, 'no VirtualIP');
  const queued = raw.queue.find((p) => p.type === PacketType.Error);
  t.match(queued, { type: PacketType.Error, code: ErrorCode.BadIdentityProof, message: /does not verify/ });
});

t.test('an IdentityProof outside the proving step is UnexpectedPacket', async (t) => {
  const relay = await relayFor(t);
  const { client: raw } = await RawClient.open({ port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => raw.close());
  const id = generateIdentity();
  raw.send({ type: PacketType.IdentityProof, publicKey: id.publicKey, signature: new Uint8Array(64) });
  const error = await raw.next(PacketType.Error);
  t.match(error, { code: ErrorCode.UnexpectedPacket });
});

t.test('a good proof gets VirtualIP version 2 with the same address rules as before', async (t) => {
  const relay = await relayFor(t);
  const raw = await RawClient.connect({ port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => raw.close());
  const id = generateIdentity();
  const virtualIp = await raw.helloWithProof((challenge) => ({ publicKey: id.publicKey, signature: signChallenge(id, challenge) }));
  t.equal(virtualIp.version, 2);
  const { client: v1, virtualIp: v1Ip } = await RawClient.open({ port: relay.port, localAddress: '127.0.0.2' });
  t.teardown(() => v1.close());
  t.equal(v1Ip.ip, virtualIp.ip, 'in ip mode the real IP still decides the address');
});
