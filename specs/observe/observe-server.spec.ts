import t from 'tap';
import http from 'node:http';
import { formatIpv4, PacketType } from '../../protocol/index.ts';
import { observedRelay, openPair, relayText } from './observed-relay.ts';
import type { ObservedStatus } from '../../observe/index.ts';
import { fetchWithin, waiter } from './wait.ts';

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetchWithin(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** One sample's value from Prometheus text: `name{labels} value`. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('/healthz, /api/status, /metrics and the page follow what happens on the relay', async (t) => {
  const { http: server, open } = await observedRelay(t);
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'bound to loopback by default');

  const health = await get(`${server.url}/healthz`);
  t.equal(health.status, 200);
  t.match(JSON.parse(health.body), { status: 'ok', uptimeMs: Number });

  let metrics = await get(`${server.url}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.type, /^text\/plain; version=0\.0\.4/);
  t.equal(sample(metrics.body, 'alphanet_clients_connected'), 0);
  t.equal(sample(metrics.body, 'alphanet_bytes_relayed_total'), 0);
  t.match(metrics.body, /# TYPE alphanet_handshake_duration_seconds histogram/);
  t.match(metrics.body, /# TYPE nodejs_eventloop_lag_seconds gauge/, 'event-loop lag from the default metrics');

  const a = await open('127.0.0.2');
  const b = await open('127.0.0.3');
  const { connectionId, sourcePort } = await openPair(a, b, 7000);
  t.equal(await relayText(a.client, b.client, connectionId, 'hello b'), 'hello b');
  t.equal(await relayText(b.client, a.client, connectionId, 'hi'), 'hi');

  const status = JSON.parse((await get(`${server.url}/api/status`)).body) as ObservedStatus;
  const va = formatIpv4(a.virtualIp.ip);
  const vb = formatIpv4(b.virtualIp.ip);
  t.same(status.clients.map((c) => [c.realIp, c.virtualIp]).sort(), [['127.0.0.2', va], ['127.0.0.3', vb]]);
  t.equal(status.pairs.length, 1);
  t.match(status.pairs[0], { id: connectionId, a: `${va}:${sourcePort}`, b: `${vb}:7000`, state: 'active.open', bytesAToB: 7, bytesBToA: 2 });
  t.equal(status.machines.socketPair?.actors, 1, 'one live socket-pair actor');
  t.equal(status.machines.socketPair?.states['socketPair.active.open'], 1);
  t.equal(status.machines.relayConnection?.actors, 2);

  metrics = await get(`${server.url}/metrics`);
  t.equal(sample(metrics.body, 'alphanet_clients_connected'), 2);
  t.equal(sample(metrics.body, 'alphanet_client_connections_total'), 2);
  t.equal(sample(metrics.body, 'alphanet_socket_connections', 'state="active.open"'), 1);
  t.equal(sample(metrics.body, 'alphanet_frames_relayed_total'), status.totals.framesRelayed);
  t.ok((sample(metrics.body, 'alphanet_bytes_relayed_total') ?? 0) >= 9 + 2 * 9, 'two data frames with their headers');
  t.ok((sample(metrics.body, 'alphanet_handshake_duration_seconds_count', 'kind="connect",outcome="accepted"') ?? 0) >= 1);
  t.equal(sample(metrics.body, 'alphanet_store_writes_total'), 2, 'one durable write per new real IP');
  t.ok((sample(metrics.body, 'alphanet_store_write_duration_seconds_count') ?? 0) >= 2);

  a.client.send({ type: PacketType.SocketClosed, connectionId, reason: 0 });
  await b.client.next(PacketType.SocketClosed);
  metrics = await get(`${server.url}/metrics`);
  t.equal(sample(metrics.body, 'alphanet_socket_closes_total', 'reason="Normal"'), 1);
  t.equal(sample(metrics.body, 'alphanet_socket_connections', 'state="active.open"'), undefined, 'closed pair no longer counted');
  const after = JSON.parse((await get(`${server.url}/api/status`)).body) as ObservedStatus;
  t.match(after.recentCloses.at(-1), { kind: 'pair', id: connectionId, reason: 'Normal', bytes: [7, 2] });
  t.equal(after.machines.socketPair?.actors ?? 0, 0);

  const page = await get(`${server.url}/`);
  t.equal(page.status, 200);
  t.match(page.body, /<title>AlphaNET relay<\/title>/);
  t.equal((await get(`${server.url}/dashboard.js`)).status, 200);
  const machines = JSON.parse((await get(`${server.url}/api/machines`)).body) as { id: string; svg: string }[];
  t.ok(machines.some((m) => m.id === 'socketPair' && m.svg.includes('data-state="socketPair.active.open"')));
  t.equal((await get(`${server.url}/api/machines/socketPair.svg`)).type, 'image/svg+xml; charset=utf-8');
  t.equal((await get(`${server.url}/nope`)).status, 404);
});

t.test('/api/events pushes the status at once and again when a client connects', async (t) => {
  const { http: server, open } = await observedRelay(t, { pushIntervalMs: 20 });
  const messages: ObservedStatus[] = [];
  const { wake, until } = waiter();
  const req = http.get(`${server.url}/api/events`, (res) => {
    t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (data) messages.push(JSON.parse(data.slice(6)) as ObservedStatus);
        wake();
      }
    });
  });
  t.teardown(() => req.destroy());
  await until('the first push', () => messages.length >= 1);
  t.equal(messages[0]?.clients.length, 0, 'first message is the current status');
  const { virtualIp } = await open('127.0.0.4');
  await until('a push listing the new client', () => messages.some((m) => m.clients.length === 1));
  t.equal(messages.find((m) => m.clients.length === 1)?.clients[0]?.virtualIp, formatIpv4(virtualIp.ip));
});
