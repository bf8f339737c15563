/**
 * connect({ relay }), ALPHANET_RELAY and --relay share one grammar (issue 15): what the relay
 * prints after `listening on` is taken back as it is, and a host alone means port 1337; so is
 * what it prints after `websocket on` (issue 14), and a URL with no path means /alphanet.
 */
import net from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { ClientError, DEFAULT_RELAY_PORT, parseRelayAddress, parseRelayTarget, parseRelayUrl } from '../../actors/client/index.ts';
import { isRelayUrl, looksLikeIpv6 } from '../../actors/client/relay-address.ts';
import { connect } from '../../index.ts';
import { relayFor } from './fixtures.ts';

t.test('every accepted form', async (t) => {
  t.equal(DEFAULT_RELAY_PORT, 1337);
  t.same(parseRelayAddress('127.0.0.1:4000'), { host: '127.0.0.1', port: 4000 });
  t.same(parseRelayAddress(' relay.example.org '), { host: 'relay.example.org', port: 1337 });
  t.same(parseRelayAddress('127.0.0.1'), { host: '127.0.0.1', port: 1337 });
  t.same(parseRelayAddress('[::1]:44855'), { host: '::1', port: 44855 });
  t.same(parseRelayAddress('[::1]'), { host: '::1', port: 1337 });
  t.same(parseRelayAddress('::1'), { host: '::1', port: 1337 });
  t.same(parseRelayAddress('fe80::1%eth0'), { host: 'fe80::1%eth0', port: 1337 });
  t.same(parseRelayAddress('::ffff:127.0.0.1'), { host: '::ffff:127.0.0.1', port: 1337 });
});

t.test('refusals name the forms, with the stable code', async (t) => {
  for (const bad of ['', ':4000', '127.0.0.1:0', '127.0.0.1:65536', '[relay.example.org]:1', 'a b:1', 'host:port', 'http://x:1']) {
    t.throws(() => parseRelayAddress(bad), { code: 'ERR_INVALID_ARGUMENT', message: /HOST, HOST:PORT, \[IPV6\]:PORT or IPV6/ }, JSON.stringify(bad));
  }
  t.ok(new ClientError('ERR_INVALID_ARGUMENT', 'x') instanceof Error);
});

t.test('the IPv6 test agrees with node:net on addresses node formats', async (t) => {
  // Node's own formatting of random IPv6 addresses (what a relay prints) is always recognised,
  // and an IPv4 address or a host name never is.
  fc.assert(
    fc.property(fc.ipV6(), (address) => looksLikeIpv6(address) === net.isIPv6(address)),
    { numRuns: 500 },
  );
  fc.assert(fc.property(fc.ipV4(), (address) => !looksLikeIpv6(address)), { numRuns: 200 });
  fc.assert(fc.property(fc.domain(), (name) => !looksLikeIpv6(name)), { numRuns: 200 });
});

t.test('connect({ relay }) with host:port, and with a host alone (port 1337)', async (t) => {
  const relay = await relayFor(t);
  const client = await connect({ relay: ` ${relay.host}:${relay.port} `, localAddress: '127.0.0.2' });
  t.teardown(() => client.close());
  t.match(client.virtualIp, /^\d+\.\d+\.\d+\.\d+$/);
  // A host alone dials port 1337 (127.0.0.9: no relay started by hand on 127.0.0.1 can answer it).
  await t.rejects(connect({ relay: '127.0.0.9', localAddress: '127.0.0.2', connectTimeoutMs: 5_000 }), {
    code: 'ERR_RELAY_UNREACHABLE',
    // The system's words once, the address once: no "connect ECONNREFUSED 127.0.0.9:1337" repeat.
    message: /^cannot reach the relay at 127\.0\.0\.9:1337: connection refused \(ECONNREFUSED\)$/,
  });
});

t.test('WebSocket URLs: ws:// and wss://, the path /alphanet when none is given, default ports 80 and 443', async (t) => {
  t.same(parseRelayUrl('wss://127.0.0.1:8443/alphanet'), { host: '127.0.0.1', port: 8443, url: 'wss://127.0.0.1:8443/alphanet' });
  t.same(parseRelayUrl(' ws://relay.example:8080 '), { host: 'relay.example', port: 8080, url: 'ws://relay.example:8080/alphanet' }, 'no path: the relay\'s');
  t.same(parseRelayUrl('wss://relay.example'), { host: 'relay.example', port: 443, url: 'wss://relay.example/alphanet' });
  t.same(parseRelayUrl('ws://[::1]:9000/'), { host: '::1', port: 9000, url: 'ws://[::1]:9000/' }, 'a path given (even /) is kept: a proxy may map it');
  t.same(parseRelayUrl('WSS://Relay.Example/game/alphanet?x=1'), { host: 'relay.example', port: 443, url: 'wss://relay.example/game/alphanet?x=1' });
  for (const bad of ['http://relay.example/alphanet', 'wss://', 'ws://h:1/#frag', 'wss://h:99999/']) {
    t.throws(() => parseRelayUrl(bad), { code: 'ERR_INVALID_ARGUMENT', message: /relay URL|fragment/ }, JSON.stringify(bad));
  }
  t.equal(isRelayUrl('wss://x'), true);
  t.equal(isRelayUrl('  WS://x'), true);
  t.equal(isRelayUrl('127.0.0.1:1337'), false);
  t.same(parseRelayTarget('127.0.0.1:4000'), { host: '127.0.0.1', port: 4000 }, 'either form: host:port');
  t.same(parseRelayTarget('wss://127.0.0.1:4000'), { host: '127.0.0.1', port: 4000, url: 'wss://127.0.0.1:4000/alphanet' }, 'either form: a URL');
  t.throws(() => parseRelayTarget('host:port'), { code: 'ERR_INVALID_ARGUMENT', message: /or a ws:\/\/ or wss:\/\/ URL/ });
});
