/**
 * A self-signed X.509 certificate for a client's Ed25519 identity key, so TLS 1.3 can carry that
 * key (docs/SECURITY.md "End-to-end encryption"). Nobody checks its name, dates or issuer: each
 * end checks only that the key in it is the one the relay announced and the one it pinned.
 *
 * The certificate is a fixed DER layout (RFC 5280 §4.1, Ed25519 per RFC 8410) written here; the
 * cryptography is Node's (OpenSSL): the key's SubjectPublicKeyInfo comes from `KeyObject.export`,
 * the signature from `crypto.sign`, and `X509Certificate` parses the result back as a check. This
 * needs no package beyond Node (@peculiar/x509, in node_modules, is not a declared dependency,
 * and the packed package must run without it).
 */
import { X509Certificate, createPublicKey, randomBytes, sign } from 'node:crypto';
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
/** id-Ed25519, 1.3.101.112 (RFC 8410 §3), as a DER OBJECT IDENTIFIER. */
const ED25519_OID = [0x06, 0x03, 0x2b, 0x65, 0x70];
/** id-at-commonName, 2.5.4.3. */
const COMMON_NAME_OID = [0x06, 0x03, 0x55, 0x04, 0x03];

const made = new WeakMap<Identity, TlsCredentials>();

/** The credentials of `identity`, made once per identity per process. */
export function credentialsFor(identity: Identity): TlsCredentials {
  let credentials = made.get(identity);
  if (credentials === undefined) {
    credentials = selfSigned(identity);
    made.set(identity, credentials);
  }
  return credentials;
}

/** DER length octets. */
function length(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** One DER element: tag, length, content. */
function tlv(tag: number, content: ArrayLike<number>): number[] {
  return [tag, ...length(content.length), ...Array.from(content)];
}

const sequence = (...items: number[][]): number[] => tlv(0x30, items.flat());
const ascii = (text: string): number[] => Array.from(Buffer.from(text, 'ascii'));

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5). */
function time(date: Date): number[] {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return date.getUTCFullYear() < 2050 ? tlv(0x17, ascii(`${iso.slice(2)}Z`)) : tlv(0x18, ascii(`${iso}Z`));
}

function selfSigned(identity: Identity): TlsCredentials {
  const algorithm = sequence(ED25519_OID);
  const name = sequence(tlv(0x31, sequence(COMMON_NAME_OID, tlv(0x0c, Buffer.from(`alphanet ${identity.fingerprint}`, 'utf8')))));
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x01; // positive and non-zero
  const now = Date.now();
  const spki = createPublicKey(identity.privateKey).export({ format: 'der', type: 'spki' });
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, [2])), // version v3
    tlv(0x02, serial),
    algorithm,
    name, // issuer
    sequence(time(new Date(now - DAY_MS)), time(new Date(now + VALIDITY_DAYS * DAY_MS))),
    name, // subject
    Array.from(spki),
  );
  const signature = sign(null, Buffer.from(tbs), identity.privateKey);
  const der = Buffer.from(sequence(tbs, algorithm, tlv(0x03, [0x00, ...signature])));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  const cert = `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
  // What OpenSSL will read: parse it back and check its own signature before any peer sees it.
  const parsed = new X509Certificate(cert);
  if (!parsed.verify(parsed.publicKey) || parsed.publicKey.export({ format: 'jwk' }).x !== identity.fingerprint) {
    throw new ClientError('ERR_E2E_HANDSHAKE', 'could not make a certificate for the identity key');
  }
  const key = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  return { key, cert, context: createSecureContext({ key, cert, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }) };
}
