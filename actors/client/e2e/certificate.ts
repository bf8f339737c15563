/**
 * A self-signed X.509 certificate for a client's Ed25519 identity key, so TLS 1.3 can carry that
 * key (docs/SECURITY.md "End-to-end encryption"). Nobody checks its name, dates or issuer: each
 * end checks only that the key in it is the one the relay announced and the one it pinned.
 *
 * The certificate is made by @peculiar/x509 (as the relay's own, cli/relay-tls.ts) over Node's
 * WebCrypto (OpenSSL): Ed25519 signature per RFC 8410. `X509Certificate` parses the result back
 * and checks its signature before any peer sees it. It is made once per identity per process and
 * the TLS context with it, so a handshake pays for neither: @peculiar/x509 is loaded on the first
 * e2e connection (a few hundred ms on a busy machine, once) and makes a certificate in ~4 ms,
 * where the DER written by hand before took ~0.1 ms; both vanish behind the cache. Loading it
 * also loads `reflect-metadata`, which adds its metadata functions to the process's global
 * `Reflect` (a dependency of @peculiar/x509's ASN.1 schemas).
 */
import { X509Certificate, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ClientError } from '../errors.ts';
import type { Identity } from '../identity.ts';

/** The PEM key and certificate TLS presents, and the TLS 1.3-only context made of them. */
export interface TlsCredentials {
  key: string;
  cert: string;
  /** Shared by every connection of the identity: TLS versions before 1.3 are refused here. */
  context: SecureContext;
}

const DAY_MS = 86_400_000;
/** Far enough that a running client never outlives it; nobody checks it anyway. */
const VALIDITY_DAYS = 100 * 365;
const ED25519 = { name: 'Ed25519' } as const;

const made = new WeakMap<Identity, Promise<TlsCredentials>>();

/** The credentials of `identity`, made once per identity per process. */
export function credentialsFor(identity: Identity): Promise<TlsCredentials> {
  let credentials = made.get(identity);
  if (credentials === undefined) {
    credentials = selfSigned(identity);
    // A failure is not cached: the next connection tries again.
    credentials.catch(() => made.delete(identity));
    made.set(identity, credentials);
  }
  return credentials;
}

async function selfSigned(identity: Identity): Promise<TlsCredentials> {
  // Loaded only here: a client without e2e never needs it.
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const subtle = webcrypto.subtle;
  const keys = {
    privateKey: await subtle.importKey('pkcs8', identity.privateKey.export({ type: 'pkcs8', format: 'der' }), ED25519, false, ['sign']),
    publicKey: await subtle.importKey('spki', createPublicKey(identity.privateKey).export({ type: 'spki', format: 'der' }), ED25519, true, ['verify']),
  };
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x01; // positive and non-zero
  const now = Date.now();
  const made = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    // The fingerprint is base64url: no character needs escaping in a distinguished name.
    name: `CN=alphanet ${identity.fingerprint}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: ED25519,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
  });
  const cert = made.toString('pem');
  // What OpenSSL will read: parse it back and check its own signature before any peer sees it.
  const parsed = new X509Certificate(cert);
  if (!parsed.verify(parsed.publicKey) || parsed.publicKey.export({ format: 'jwk' }).x !== identity.fingerprint) {
    throw new ClientError('ERR_E2E_HANDSHAKE', 'could not make a certificate for the identity key');
  }
  const key = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  return { key, cert, context: createSecureContext({ key, cert, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }) };
}
