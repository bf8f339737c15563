/**
 * Presence (actors/relay/cluster/presence.ts): which relay holds which virtual host, written on a
 * host's first connection, deleted at its last, refreshed by heartbeats, and gone within the TTL
 * once its relay dies.
 */
import t from 'tap';
import { EventEmitter } from 'eventemitter3';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createLogger } from '../../../actors/logger.ts';
import { ClusterPresence } from '../../../actors/relay/cluster/index.ts';
import type { Relay, RelayBusEvents } from '../../../actors/relay/index.ts';
import { parseIpv4 } from '../../../protocol/address.ts';
import { startNatsServer } from '../../helpers/nats-server.ts';
import { waitFor } from '../../helpers/wait.ts';

const TTL_MS = 600;
const HEARTBEAT_MS = 150;

const nats = await startNatsServer(t);
const logger = createLogger({ level: 'silent' });

interface Member {
  nc: NatsConnection;
  presence: ClusterPresence;
  bus: EventEmitter<RelayBusEvents>;
}

async function member(t: { teardown(fn: () => unknown): void }, relayId: string, bucket: string): Promise<Member> {
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await new Kvm(jetstream(nc)).create(bucket, { history: 1, ttl: TTL_MS });
  const presence = new ClusterPresence({ kv, connection: nc, bucket, relayId, logger, ttlMs: TTL_MS, heartbeatMs: HEARTBEAT_MS });
  await presence.start();
  const bus = new EventEmitter<RelayBusEvents>();
  presence.attach({ bus } as unknown as Relay);
  return { nc, presence, bus };
}

const connected = (m: Member, id: number, virtualIp: string) => m.bus.emit('client.connected', { id, realIp: '127.0.0.2', virtualIp, at: 0 });
const disconnected = (m: Member, id: number, virtualIp: string) =>
  m.bus.emit('client.disconnected', { id, realIp: '127.0.0.2', virtualIp, reason: 'TransportClosed', message: '', durationMs: 0, bytesIn: 0, bytesOut: 0 });

t.test('a host is present from its first connection to its last, and every relay sees where', async (t) => {
  const [a, b] = [await member(t, 'ra', 'presence-1'), await member(t, 'rb', 'presence-1')];
  const host = parseIpv4('100.64.0.9')!;
  t.equal(b.presence.holder(host), undefined);
  connected(a, 1, '100.64.0.9');
  connected(a, 2, '100.64.0.9');
  await waitFor(() => b.presence.holder(host) === 'ra', 'relay rb to see 100.64.0.9 on ra');
  t.equal(a.presence.holder(host), 'ra');
  disconnected(a, 1, '100.64.0.9');
  // Outlives several heartbeats and the TTL with one connection left.
  await new Promise((resolve) => setTimeout(resolve, TTL_MS * 2));
  t.equal(b.presence.holder(host), 'ra', 'still present while one connection is left (heartbeats refresh it)');
  disconnected(a, 2, '100.64.0.9');
  await waitFor(() => b.presence.holder(host) === undefined, 'the host to leave after its last connection');
  await Promise.all([a.presence.stop(), b.presence.stop()]);
});

t.test("a relay that dies without a word: its hosts expire within the TTL, the others' stay", async (t) => {
  const [a, b, c] = [await member(t, 'ra', 'presence-2'), await member(t, 'rb', 'presence-2'), await member(t, 'rc', 'presence-2')];
  connected(a, 1, '100.64.0.10');
  connected(b, 1, '100.64.0.11');
  const ten = parseIpv4('100.64.0.10')!;
  const eleven = parseIpv4('100.64.0.11')!;
  await waitFor(() => c.presence.holder(ten) === 'ra' && c.presence.holder(eleven) === 'rb', 'both hosts present');
  // ra loses NATS for good: no stop(), no delete, its heartbeats fail.
  await a.nc.close();
  const died = performance.now();
  await waitFor(() => c.presence.holder(ten) === undefined, "ra's host to expire", TTL_MS * 10);
  t.ok(performance.now() - died >= TTL_MS - HEARTBEAT_MS, 'not before the TTL');
  t.equal(c.presence.holder(eleven), 'rb', "rb's host, heartbeated, stays");
  // The client reconnects to rc: rc writes it, and a late delete from a relay it left is undone.
  connected(c, 7, '100.64.0.10');
  await waitFor(() => b.presence.holder(ten) === 'rc', 'rb to see the host on rc');
  disconnected(b, 1, '100.64.0.11');
  connected(b, 2, '100.64.0.10');
  disconnected(b, 2, '100.64.0.10');
  await waitFor(() => b.presence.holder(ten) === 'rc', 'the host back on rc after rb deleted it');
  await Promise.all([b.presence.stop(), c.presence.stop()]);
});
