/**
 * Relay TLS for specs: a key and self-signed certificate made as the relay makes its own, and the
 * client's side of trust, a known-relays file of the spec's own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { certificateFingerprint } from '../../actors/relay/index.ts';
import { ensureRelayIdentity, readTlsFiles } from '../../cli/relay-tls.ts';

export interface Identity {
  key: string;
  cert: string;
  fingerprint: string;
  keyFile: string;
  certFile: string;
}

/** A fresh key and certificate in a temporary directory removed when `t` ends. */
export async function makeIdentity(t: Test): Promise<Identity> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-tls-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = await ensureRelayIdentity(dir);
  const { key, cert } = await readTlsFiles(files);
  return { key: String(key), cert: String(cert), fingerprint: certificateFingerprint(cert), keyFile: files.keyFile, certFile: files.certFile };
}

/** A path for a known-relays file (not yet written) in a temporary directory removed when `t` ends. */
export async function knownRelaysFile(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-known-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'known-relays');
}
