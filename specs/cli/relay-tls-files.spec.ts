/** The relay command's key and certificate files (cli/relay-tls.ts), without a process. */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { certificateFingerprint } from '../../actors/relay/index.ts';
import { chooseRelayTls, ensureRelayIdentity, readTlsFiles, TLS_CERT_FILE, TLS_KEY_FILE } from '../../cli/relay-tls.ts';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-tls-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const fingerprintIn = async (dir: string): Promise<string> => certificateFingerprint(await readFile(path.join(dir, TLS_CERT_FILE)));

t.test('two relays starting together in one directory end up with one key and one fingerprint', async (t) => {
  const dir = await tempDir(t);
  const [a, b] = await Promise.all([ensureRelayIdentity(dir), ensureRelayIdentity(dir)]);
  t.equal(Number(a.created) + Number(b.created) >= 1, true, 'one of them made it');
  const [ma, mb] = [await readTlsFiles(a), await readTlsFiles(b)];
  t.equal(certificateFingerprint(ma.cert), certificateFingerprint(mb.cert));
  t.equal(String(ma.key), String(mb.key));
  t.equal((await stat(path.join(dir, TLS_KEY_FILE))).mode & 0o777, 0o600);
});

t.test('a deleted key is made again with a certificate of its own; a deleted certificate is signed again for the kept key', async (t) => {
  const dir = await tempDir(t);
  await ensureRelayIdentity(dir);
  const first = await fingerprintIn(dir);
  await rm(path.join(dir, TLS_CERT_FILE));
  t.equal((await ensureRelayIdentity(dir)).created, true);
  t.equal(await fingerprintIn(dir), first, 'the same key, the same fingerprint');
  await rm(path.join(dir, TLS_KEY_FILE));
  await ensureRelayIdentity(dir);
  t.not(await fingerprintIn(dir), first, 'a new key');
  await t.resolves(readTlsFiles({ keyFile: path.join(dir, TLS_KEY_FILE), certFile: path.join(dir, TLS_CERT_FILE) }), 'and its certificate matches it');
});

t.test('the flags: what contradicts itself, and files that do not match, are refused naming them', async (t) => {
  const [one, two] = [await tempDir(t), await tempDir(t)];
  await ensureRelayIdentity(one);
  await ensureRelayIdentity(two);
  const db = path.join(one, 'db.json');
  await t.rejects(chooseRelayTls({ db, plaintext: true, tlsCert: path.join(one, TLS_CERT_FILE) }), /--plaintext serves no TLS/);
  await t.rejects(chooseRelayTls({ db, plaintext: true, plaintextPort: 0 }), /--plaintext-port/);
  await t.rejects(chooseRelayTls({ db, plaintext: false, tlsCert: path.join(one, TLS_CERT_FILE) }), /--tls-cert and --tls-key go together/);
  const mismatch = chooseRelayTls({ db, plaintext: false, tlsCert: path.join(one, TLS_CERT_FILE), tlsKey: path.join(two, TLS_KEY_FILE) });
  await t.rejects(mismatch, new RegExp(`the TLS key ${path.join(two, TLS_KEY_FILE)} does not belong to the certificate ${path.join(one, TLS_CERT_FILE)}`));
  await t.rejects(chooseRelayTls({ db, plaintext: false, tlsCert: path.join(one, 'missing.pem'), tlsKey: path.join(one, TLS_KEY_FILE) }), /cannot read the TLS certificate .*missing\.pem/);
  t.same(await chooseRelayTls({ db, plaintext: true }), {}, '--plaintext alone: no TLS');
  const chosen = await chooseRelayTls({ db, plaintext: false, plaintextPort: 0 });
  t.equal(chosen.plaintextPort, 0);
  t.equal(chosen.files?.keyFile, path.join(one, TLS_KEY_FILE), 'beside the store by default');
});
