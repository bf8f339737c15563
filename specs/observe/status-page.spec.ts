import t from 'tap';
import http from 'node:http';
import { observedRelay, openPair } from './observed-relay.ts';
import { PacketType } from '../../protocol/index.ts';
import { nextId } from '../helpers/raw-client.ts';
import type { ObservedStatus } from '../../observe/index.ts';
import { DEFAULT_STATUS_LIST_LIMIT, STATUS_PORTS_LIMIT } from '../../actors/relay/relay.actor.ts';
import { WAIT_MS, fetchWithin } from './wait.ts';


async function status(url: string): Promise<ObservedStatus> {
  const res = await fetchWithin(url);
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as ObservedStatus;
}

/** The first `event: status` message of /api/events. */
function firstPush(url: string): Promise<ObservedStatus> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no push within ${WAIT_MS} ms`)), WAIT_MS);
    const req = http.get(`${url}/api/events`, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        const end = buffer.indexOf('\n\n', buffer.indexOf('data: '));
        if (buffer.includes('data: ') && end >= 0) {
          clearTimeout(timer);
          req.destroy();
          resolve(JSON.parse(buffer.slice(buffer.indexOf('data: ') + 6, end)) as ObservedStatus);
        }
      });
    });
    req.on('error', () => {});
  });
}

t.test('/api/status lists one capped page; the counts stay complete', async (t) => {
  const { relay, http: server, open, observation } = await observedRelay(t, { statusListLimit: 2 });
  const a = await open('127.0.0.2');
  const b = await open('127.0.0.3');
  await open('127.0.0.4');
  for (const port of [6000, 6001, 6002]) await openPair(a, b, port);

  const page = await status(`${server.url}/api/status`);
  t.equal(page.clients.length, 2, 'capped at --http-list-limit');
  t.equal(page.pairs.length, 2);
  t.same(page.list, { limit: 2, offset: 0, truncated: { clients: true, pairs: true } });
  t.match(page.totals, { clientsConnected: 3, pairsLive: 3, pairsActive: 3 }, 'the counts are of everything');
  t.same(page.clients.map((c) => c.realIp), ['127.0.0.2', '127.0.0.3'], 'in connection order');

  const last = await status(`${server.url}/api/status?offset=2`);
  t.same(last.clients.map((c) => c.realIp), ['127.0.0.4'], 'the next page');
  t.same(last.list.truncated, { clients: false, pairs: false }, 'nothing beyond it');
  t.equal((await status(`${server.url}/api/status?limit=1`)).clients.length, 1, '?limit= asks for fewer');
  t.equal((await status(`${server.url}/api/status?limit=500`)).list.limit, 2, 'but never more than the cap');
  t.equal((await status(`${server.url}/api/status?offset=99`)).clients.length, 0, 'past the end: empty');

  const push = await firstPush(server.url);
  t.equal(push.clients.length, 2, 'live pushes are capped the same way');
  t.equal(push.list.truncated.clients, true);

  t.match(await observation.metrics!.metrics(), /alphanet_http_status_truncated_total [3-9]\d*\n/, 'capped responses are counted');
  // One more connection request, left unanswered: a pair still in its handshake.
  const source = { ip: a.virtualIp.ip, port: (await a.client.bind(0)).port };
  a.client.send({ type: PacketType.SocketConnectionRequest, requestId: nextId(), connectionId: 0, source, destination: { ip: b.virtualIp.ip, port: 6000 } });
  await b.client.next(PacketType.SocketConnectionRequest);
  t.match(relay.status().totals, { pairsLive: 4, pairsActive: 3 }, 'an opening pair is live but not active');

  t.equal(relay.status().list.limit, DEFAULT_STATUS_LIST_LIMIT, 'relay.status() is capped by default too');
  t.equal(relay.status({ limit: Infinity }).list.limit, null, 'and lists everything only when asked');
});

t.test('a client’s ports are listed up to STATUS_PORTS_LIMIT, and all are counted', async (t) => {
  const { http: server, open } = await observedRelay(t);
  const a = await open('127.0.0.2');
  for (let port = 7000; port < 7000 + STATUS_PORTS_LIMIT + 8; port++) await a.client.bind(port);
  const [client] = (await status(`${server.url}/api/status`)).clients;
  t.equal(client?.ports.length, STATUS_PORTS_LIMIT);
  t.equal(client?.portCount, STATUS_PORTS_LIMIT + 8);
});
