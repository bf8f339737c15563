/**
 * The keys in the requests between relays (actors/relay/cluster/asks.ts): a proven key crosses as
 * base64url and comes back the same 32 bytes; anything else from another relay is refused.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { keyText, parseKey } from '../../../actors/relay/cluster/asks.ts';

t.test('a key crosses as 43 base64url characters and comes back the same bytes', async (t) => {
  const key = new Uint8Array(randomBytes(32));
  const text = keyText(key);
  t.match(text, /^[A-Za-z0-9_-]{43}$/);
  t.same(parseKey(JSON.parse(JSON.stringify(text))), key);
});

t.test('no key is null both ways', async (t) => {
  t.equal(keyText(undefined), null);
  t.equal(parseKey(null), undefined);
  t.equal(parseKey(undefined), undefined, 'an ask without the field (no key)');
});

t.test('anything else is bad: wrong length, padding, other alphabets, other types', async (t) => {
  const good = keyText(new Uint8Array(32))!;
  for (const bad of [good.slice(1), `${good}A`, `${good}=`, good.replace(/.$/, '+'), good.replace(/.$/, '/'), 42, {}, [], true]) {
    t.equal(parseKey(bad), 'bad', JSON.stringify(bad));
  }
});
