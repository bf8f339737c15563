/**
 * The relay command's TLS (issue 12): which key and certificate it serves, made on first start
 * when none are given, and read again on SIGHUP. `--tls-cert`/`--tls-key` name provided files;
 * without them the relay keeps a key and a self-signed certificate beside its store (the
 * directory of `--db`), made once and reused, so its fingerprint stays the same across restarts.
 */
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import tls from 'node:tls';
import path from 'node:path';
import type { Logger } from '../actors/logger.ts';
import type { Relay, RelayTlsOptions } from '../actors/relay/index.ts';

/** The key the relay makes on first start, in its data directory (mode 0600). */
export const TLS_KEY_FILE = 'tls-key.pem';
/** Its self-signed certificate, beside the key. */
export const TLS_CERT_FILE = 'tls-cert.pem';
/**
 * Validity of the certificate the relay makes. Clients check the pinned key, never the dates
 * (there is no authority to check them against), so it is made not to expire in practice.
 */
export const SELF_SIGNED_VALIDITY_YEARS = 100;
/** ECDSA P-256 with SHA-256: small, fast, and one of TLS 1.3's signature schemes everywhere. */
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Where the relay's key and certificate are, to read now and again on SIGHUP. */
export interface TlsFiles {
  keyFile: string;
  certFile: string;
  /** True when they were made by this start. */
  created: boolean;
}

/** Writes `data` to `file` only if it does not exist (made whole, then linked in): false if another process won. */
async function createExclusive(file: string, data: string, mode: number): Promise<boolean> {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, data, { mode });
  try {
    await link(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temporary, { force: true });
  }
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** A self-signed certificate (PEM) for the P-256 key `keyPem`. */
async function selfSign(keyPem: string): Promise<string> {
  // Loaded only here: most starts reuse their certificate and never need it.
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const privateKey = createPrivateKey(keyPem);
  const subtle = webcrypto.subtle;
  const keys = {
    privateKey: await subtle.importKey('pkcs8', privateKey.export({ type: 'pkcs8', format: 'der' }), KEY_ALGORITHM, false, ['sign']),
    publicKey: await subtle.importKey('spki', createPublicKey(privateKey).export({ type: 'spki', format: 'der' }), KEY_ALGORITHM, true, ['verify']),
  };
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // a positive INTEGER
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'CN=AlphaNET relay',
    notBefore: new Date(now - 24 * 3600_000),
    notAfter: new Date(now + SELF_SIGNED_VALIDITY_YEARS * 365.25 * 24 * 3600_000),
    signingAlgorithm: KEY_ALGORITHM,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
  });
  return cert.toString('pem');
}

/**
 * The relay's own key and certificate in `dir`, made on first use and reused after. Two relays
 * starting together in one directory end up with the same key: each file appears whole, once.
 */
export async function ensureRelayIdentity(dir: string): Promise<TlsFiles> {
  const keyFile = path.join(dir, TLS_KEY_FILE);
  const certFile = path.join(dir, TLS_CERT_FILE);
  await mkdir(dir, { recursive: true });
  let created = false;
  let keyPem = await readIfPresent(keyFile);
  if (keyPem === undefined) {
    const { privateKey } = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
    const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', privateKey));
    const pem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
    created = await createExclusive(keyFile, pem, 0o600);
    keyPem = created ? pem : await readFile(keyFile, 'utf8');
  }
  if (created) {
    // A new key: any certificate already there (its key was deleted) belongs to another key.
    // Replaced whole; a second relay racing this start signs the same key, so the fingerprint agrees.
    const temporary = `${certFile}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, await selfSign(keyPem), { mode: 0o644 });
    await rename(temporary, certFile);
  } else if ((await readIfPresent(certFile)) === undefined) {
    if (await createExclusive(certFile, await selfSign(keyPem), 0o644)) created = true;
  }
  return { keyFile, certFile, created };
}

/** Reads a key and certificate, naming the file that cannot be read or does not hold one. */
export async function readTlsFiles(files: Pick<TlsFiles, 'keyFile' | 'certFile'>): Promise<RelayTlsOptions> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  const key = await read(files.keyFile, 'key');
  const cert = await read(files.certFile, 'certificate');
  try {
    createPrivateKey(key);
  } catch (error) {
    throw new Error(`${files.keyFile} holds no private key (PEM): ${(error as Error).message}`, { cause: error });
  }
  try {
    new X509Certificate(cert);
  } catch (error) {
    throw new Error(`${files.certFile} holds no certificate (PEM): ${(error as Error).message}`, { cause: error });
  }
  try {
    tls.createSecureContext({ key, cert });
  } catch (error) {
    const reason = (error as { reason?: string }).reason ?? (error as Error).message;
    throw new Error(`the TLS key ${files.keyFile} does not belong to the certificate ${files.certFile} (${reason})`, { cause: error });
  }
  return { key, cert };
}

/**
 * On SIGHUP, reads the key and certificate files again and gives them to the relay for new
 * connections. A reload that fails (unreadable, or a key that does not match its certificate)
 * keeps the current ones and logs why. Returns a function that stops listening for SIGHUP.
 */
export function reloadTlsOnHangup(relay: Relay, files: Pick<TlsFiles, 'keyFile' | 'certFile'>, logger: Logger): () => void {
  let reloading: Promise<void> = Promise.resolve();
  const reload = async (): Promise<void> => {
    try {
      const material = await readTlsFiles(files);
      const fingerprint = relay.setTls(material);
      logger.info({ fingerprint, certFile: files.certFile, keyFile: files.keyFile }, 'SIGHUP: TLS certificate reloaded; new connections get it');
    } catch (error) {
      logger.error({ err: error, certFile: files.certFile, keyFile: files.keyFile }, `SIGHUP: TLS reload failed, keeping the current certificate: ${(error as Error).message}`);
    }
  };
  const onHangup = (): void => {
    reloading = reloading.then(reload);
  };
  process.on('SIGHUP', onHangup);
  return () => process.off('SIGHUP', onHangup);
}

/** What the relay command serves: TLS material (absent with --plaintext) and the files it came from. */
export interface RelayTlsChoice {
  tls?: RelayTlsOptions;
  plaintextPort?: number;
  files?: TlsFiles;
}

/**
 * The flags' choice: `--plaintext` alone is plain TCP; else TLS from `--tls-cert`/`--tls-key`, or
 * from the key and certificate kept beside `db` (made on first start). Throws for flags that
 * contradict each other, or files that cannot be read.
 */
export async function chooseRelayTls(cli: { db: string; tlsCert?: string; tlsKey?: string; plaintext: boolean; plaintextPort?: number }): Promise<RelayTlsChoice> {
  const provided = cli.tlsCert !== undefined || cli.tlsKey !== undefined;
  if (cli.plaintext) {
    if (provided) throw new Error('--plaintext serves no TLS: leave out --tls-cert and --tls-key, or --plaintext');
    if (cli.plaintextPort !== undefined) throw new Error('--plaintext-port serves plain TCP beside TLS; with --plaintext, --port already is plain TCP');
    return {};
  }
  let files: TlsFiles;
  if (provided) {
    if (cli.tlsCert === undefined || cli.tlsKey === undefined) throw new Error('--tls-cert and --tls-key go together: give both');
    files = { certFile: path.resolve(cli.tlsCert), keyFile: path.resolve(cli.tlsKey), created: false };
  } else {
    files = await ensureRelayIdentity(path.dirname(path.resolve(cli.db)));
  }
  return { tls: await readTlsFiles(files), files, ...(cli.plaintextPort === undefined ? {} : { plaintextPort: cli.plaintextPort }) };
}

/** What follows `listening on HOST:PORT` on the ready line: how it is served. */
export function describeTransport(relay: Relay, formatHostPort: (host: string, port: number) => string): string {
  if (relay.tlsFingerprint === undefined) return 'plaintext';
  const beside = relay.plaintextPort === undefined ? '' : `; plaintext on ${formatHostPort(relay.host, relay.plaintextPort)}`;
  return `TLS, fingerprint ${relay.tlsFingerprint}${beside}`;
}

/** What follows `websocket on URL` on the ready line: wss with the TCP port's fingerprint, or plaintext. */
export function describeWebSocket(relay: Relay): string {
  return relay.websocket?.tls === true && relay.tlsFingerprint !== undefined ? `wss, fingerprint ${relay.tlsFingerprint}` : 'plaintext';
}
