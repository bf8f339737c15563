import t from 'tap';
import { formatFingerprint, parseFingerprint } from '../../protocol/index.ts';

const digest = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
const printed = formatFingerprint(digest);

t.test('a fingerprint is sha256: and 32 upper-case hex pairs joined by colons', async (t) => {
  t.match(printed, /^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  t.equal(printed.slice(7, 15), '00:07:0E');
  t.throws(() => formatFingerprint(new Uint8Array(31)), RangeError);
});

t.test('what a person pastes is read back in any case, with or without prefix and colons', async (t) => {
  const hex = printed.slice(7).replace(/:/g, '');
  for (const text of [printed, printed.toLowerCase(), ` ${printed}\n`, hex, hex.toLowerCase(), `SHA256:${hex}`]) t.equal(parseFingerprint(text), printed, JSON.stringify(text));
  for (const bad of ['', 'sha256:', 'sha256:AB', `${hex}00`, hex.replace(/^./, 'G'), `sha1:${hex}`]) t.equal(parseFingerprint(bad), undefined, JSON.stringify(bad));
});

t.test('toBase64url (browser-safe) writes a public key as formatPublicKey (Buffer) does', async (t) => {
  const { toBase64url } = await import('../../protocol/base64url.ts');
  const { formatPublicKey } = await import('../../protocol/identity-proof.ts');
  for (let n = 0; n <= 40; n++) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 97 + n * 31 + 251) & 255);
    t.equal(toBase64url(bytes), formatPublicKey(bytes), `${n} bytes`);
  }
  t.equal(toBase64url(new Uint8Array([0xfb, 0xff])), '-_8', 'the URL-safe alphabet, no padding');
});
