/** The self-signed certificate of an identity key (actors/client/e2e/certificate.ts), as OpenSSL reads it. */
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { credentialsFor } from '../../actors/client/e2e/certificate.ts';
import { generateIdentity } from '../../actors/client/identity.ts';

t.test('the certificate carries the identity key, verifies with it, and is made once per identity', async (t) => {
  const identity = generateIdentity();
  const { cert, key } = await credentialsFor(identity);
  const parsed = new X509Certificate(cert);
  t.equal(parsed.publicKey.asymmetricKeyType, 'ed25519');
  t.equal(parsed.publicKey.export({ format: 'jwk' }).x, identity.fingerprint, 'the key in it is the identity key');
  t.ok(parsed.verify(parsed.publicKey), 'self-signed by that key');
  t.match(parsed.subject, `CN=alphanet ${identity.fingerprint}`);
  t.equal(parsed.issuer, parsed.subject);
  t.ok(new Date(parsed.validTo).getUTCFullYear() >= 2100, `valid for a century (GeneralizedTime past 2049): ${parsed.validTo}`);
  t.ok(new Date(parsed.validFrom).getTime() < Date.now());
  t.match(key, /^-----BEGIN PRIVATE KEY-----/);
  t.equal(await credentialsFor(identity), await credentialsFor(identity), 'one certificate per identity per process');
  const other = new X509Certificate((await credentialsFor(generateIdentity())).cert);
  t.not(other.serialNumber, parsed.serialNumber, 'random serial numbers');
  t.notOk(other.verify(parsed.publicKey), "another identity's certificate does not verify with this key");
});
