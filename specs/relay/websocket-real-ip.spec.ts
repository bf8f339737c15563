/**
 * A WebSocket client's real IP (docs/SECURITY.md "Behind a proxy"): the TCP peer, or behind a
 * trusted proxy the right-most X-Forwarded-For hop that is not a trusted proxy; an untrusted
 * peer's header is ignored. The real IP decides the virtual IP and the per-IP cap.
 */
import t from 'tap';
import { realIpOf, trustedProxies } from '../../actors/relay/real-ip.ts';
import { relayFor } from '../client/fixtures.ts';
import { RawWsClient } from '../helpers/ws-raw-client.ts';
import { within } from '../observe/wait.ts';
import { ErrorCode, PacketType } from '../../protocol/index.ts';

t.test('realIpOf: the right-most untrusted hop behind trusted proxies, else the peer', async (t) => {
  const trusted = trustedProxies(['127.0.0.2', '10.1.0.0/16', '::1']);
  t.equal(realIpOf('127.0.0.2', '198.51.100.7', trusted), '198.51.100.7', 'one trusted proxy');
  t.equal(realIpOf('127.0.0.2', 'evil, 203.0.113.1, 198.51.100.7, 10.1.2.3', trusted), '198.51.100.7', 'a chain: trusted hops skipped, the client-written left part ignored');
  t.equal(realIpOf('127.0.0.2', ['203.0.113.1', '198.51.100.7'], trusted), '198.51.100.7', 'several headers are one list');
  t.equal(realIpOf('127.0.0.2', 'garbage', trusted), '127.0.0.2', 'a hop that is no address ends the walk');
  t.equal(realIpOf('127.0.0.3', '198.51.100.7', trusted), '127.0.0.3', 'an untrusted peer: header ignored');
  t.equal(realIpOf('::ffff:127.0.0.2', '::ffff:198.51.100.7', trusted), '198.51.100.7', 'IPv4-mapped addresses normalised');
  t.equal(realIpOf('::1', '2001:db8::5', trusted), '2001:db8::5', 'IPv6');
  t.equal(realIpOf('127.0.0.2', undefined, trusted), '127.0.0.2', 'no header: the peer');
  t.equal(realIpOf('127.0.0.2', '198.51.100.7', undefined), '127.0.0.2', 'no trusted proxies: the peer');
  t.throws(() => trustedProxies(['10.0.0.0/33']), { code: 'ERR_INVALID_ARGUMENT', message: /10\.0\.0\.0\/33/ });
  t.throws(() => trustedProxies(['proxy.example']), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('through the relay: a trusted proxy names the client, an untrusted peer cannot', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0, trustProxy: ['127.0.0.2'] }, maxConnectionsPerIp: 1 });
  const url = relay.websocket!.url;
  const headers = { 'x-forwarded-for': '203.0.113.1, 198.51.100.7' };
  const { client: proxied, ip: proxiedIp } = await RawWsClient.hello(url, { localAddress: '127.0.0.2', headers });
  t.teardown(() => proxied.ws.terminate());
  const { client: spoofer, ip: spooferIp } = await RawWsClient.hello(url, { localAddress: '127.0.0.3', headers });
  t.teardown(() => spoofer.ws.terminate());
  const realIps = relay.status().clients.map((c) => c.realIp).sort();
  t.same(realIps, ['127.0.0.3', '198.51.100.7'], 'the proxied client has its own IP; the untrusted header was ignored');
  t.not(proxiedIp, spooferIp);
  // The per-IP cap counts the named client, not the proxy: a second client through the proxy
  // from another address is admitted, the same one again is refused.
  const { client: another } = await RawWsClient.hello(url, { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '198.51.100.8' } });
  t.teardown(() => another.ws.terminate());
  const again = await RawWsClient.open(url, { localAddress: '127.0.0.2', headers });
  t.teardown(() => again.ws.terminate());
  t.match(await again.next(PacketType.Error), { code: ErrorCode.TooManyClients, message: /^198\.51\.100\.7 already has 1 connections/ }, 'the same client again: refused by the per-IP cap, under its own IP');
  t.equal((await within('the refused WebSocket closes', again.closed)).code, 1000);
  t.equal(relay.counters.clientsRejected, 1);
});
