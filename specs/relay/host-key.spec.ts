/**
 * Which real IPs count as one host for the per-IP and per-host limits (actors/relay/limits.ts):
 * IPv4 addresses each on their own, IPv6 addresses by prefix (default /64), so one subscriber's
 * 2^64 addresses are not 2^64 hosts. Also the bounded text used for client-supplied log fields.
 */
import t from 'tap';
import fc from 'fast-check';
import { boundedText, hostKey } from '../../actors/relay/limits.ts';

t.test('IPv4 addresses are their own key', async (t) => {
  t.equal(hostKey('127.0.0.2', 64), '127.0.0.2');
  t.not(hostKey('127.0.0.2', 64), hostKey('127.0.0.3', 64));
});

t.test('IPv6 addresses in one prefix share a key; other prefixes do not', async (t) => {
  t.equal(hostKey('2001:db8:0:1::5', 64), '2001:db8:0:1:0:0:0:0/64');
  t.equal(hostKey('2001:db8:0:1:aaaa:bbbb:cccc:dddd', 64), hostKey('2001:db8:0:1::1', 64));
  t.not(hostKey('2001:db8:0:2::1', 64), hostKey('2001:db8:0:1::1', 64));
  t.equal(hostKey('2001:db8:0:2::1', 48), hostKey('2001:db8:0:1::1', 48), 'a /48 spans both');
  t.equal(hostKey('2001:db8::1', 128), '2001:db8:0:0:0:0:0:1/128', '/128 keeps every address apart');
  t.equal(hostKey('2001:DB8::1', 64), hostKey('2001:db8::2', 64), 'case does not matter');
  t.equal(hostKey('fe80::1%eth0', 64), 'fe80:0:0:0:0:0:0:0/64', 'a zone id is dropped');
  t.equal(hostKey('2001:db8:1:2::1.2.3.4', 64), '2001:db8:1:2:0:0:0:0/64', 'an embedded IPv4 tail');
});

t.test('any two addresses that agree in their first 64 bits share a /64 key', async () => {
  const group = fc.integer({ min: 0, max: 0xffff });
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), fc.array(group, { minLength: 4, maxLength: 4 }), (a, tail) => {
      const one = a.map((g) => g.toString(16)).join(':');
      const two = [...a.slice(0, 4), ...tail].map((g) => g.toString(16)).join(':');
      if (hostKey(one, 64) !== hostKey(two, 64)) throw new Error(`${one} and ${two} differ`);
    }),
  );
});

t.test('bounded text is cut with a marker that says how long it was', async (t) => {
  t.same(boundedText('short', 10), { text: 'short', truncated: false });
  t.same(boundedText('x'.repeat(20), 10), { text: `${'x'.repeat(10)}…[truncated, 20 chars]`, truncated: true });
});
