/**
 * A self-signed X.509 certificate for a client's Ed25519 identity key, so TLS 1.3 can carry that
 * key (docs/SECURITY.md "End-to-end encryption"). Nobody checks its name, dates or issuer: each
 * end checks only that the key in it is the one the relay announced and the one it pinned. Made
 * with @peculiar/x509 over Node's webcrypto (OpenSSL); no cryptography of our own.
 */
import { createPublicKey, webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { ClientError } from '../errors.ts';
import type { Identity } from '../identity.ts';

/** The PEM key and certificate TLS presents. */
export interface TlsCredentials {
  key: string;
  cert: string;
}

const DAY_MS = 86_400_000;
/** Far enough that a running client never outlives it; nobody checks it anyway. */
const VALIDITY_DAYS = 100 * 365;

/** The Crypto type @peculiar/x509 expects. */
type WebCrypto = NonNullable<Parameters<typeof X509.X509CertificateGenerator.createSelfSigned>[1]>;

/**
 * @peculiar/x509, loaded when the first certificate is made: a client that never encrypts (or a
 * package installed without it) still loads.
 */
async function loadX509(): Promise<typeof X509> {
  try {
    return await import('@peculiar/x509');
  } catch (error) {
    throw new ClientError('ERR_E2E_HANDSHAKE', `end-to-end encryption needs the package @peculiar/x509 (npm install @peculiar/x509), or pass e2e: false: ${(error as Error).message}`, { cause: error });
  }
}

const made = new WeakMap<Identity, Promise<TlsCredentials>>();

/** The credentials of `identity`, made once per identity per process. */
export function credentialsFor(identity: Identity): Promise<TlsCredentials> {
  let credentials = made.get(identity);
  if (credentials === undefined) {
    credentials = selfSigned(identity);
    made.set(identity, credentials);
  }
  return credentials;
}

async function selfSigned(identity: Identity): Promise<TlsCredentials> {
  const x509 = await loadX509();
  // Node's webcrypto is the Crypto @peculiar/x509 takes (its types name the DOM's).
  const crypto = webcrypto as typeof webcrypto & WebCrypto;
  const algorithm = { name: 'Ed25519' };
  const pkcs8 = identity.privateKey.export({ format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(identity.privateKey).export({ format: 'der', type: 'spki' });
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('spki', spki, algorithm, true, ['verify']);
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: '01',
      name: `CN=alphanet ${identity.fingerprint}`,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + VALIDITY_DAYS * DAY_MS),
      keys: { privateKey, publicKey },
      signingAlgorithm: algorithm,
    },
    crypto,
  );
  return { key: identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, cert: certificate.toString('pem') };
}
