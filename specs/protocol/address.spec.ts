import t from 'tap';
import { formatAddress, formatIpv4, isPort, normaliseRealIp, parseIpv4 } from '../../protocol/index.ts';

t.test('dotted quads round-trip through u32', async (t) => {
  for (const text of ['0.0.0.0', '100.64.0.1', '127.0.0.2', '255.255.255.255', '10.1.2.3']) {
    const ip = parseIpv4(text);
    t.type(ip, 'number');
    t.equal(formatIpv4(ip!), text);
  }
  t.equal(parseIpv4('255.255.255.255'), 0xffffffff);
  t.equal(parseIpv4('1.2.3.4'), 0x01020304);
});

t.test('invalid addresses are refused', async (t) => {
  for (const bad of ['256.0.0.1', '1.2.3', '1.2.3.4.5', 'a.b.c.d', '', ' 1.2.3.4', '1.2.3.4 ', '::1']) {
    t.equal(parseIpv4(bad), undefined, bad);
  }
});

t.test('ports and formatting', async (t) => {
  t.ok(isPort(0));
  t.ok(isPort(65535));
  t.notOk(isPort(65536));
  t.notOk(isPort(-1));
  t.notOk(isPort(1.5));
  t.equal(formatAddress({ ip: 0x64400001, port: 80 }), '100.64.0.1:80');
});

t.test('IPv4-mapped IPv6 folds to IPv4; others are kept', async (t) => {
  t.equal(normaliseRealIp('::ffff:127.0.0.2'), '127.0.0.2');
  t.equal(normaliseRealIp('127.0.0.2'), '127.0.0.2');
  t.equal(normaliseRealIp('::1'), '::1');
});
