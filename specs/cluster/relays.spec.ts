/**
 * Three relay processes started with --cluster on one nats-server (JetStream on), on loopback:
 * one address per real IP across all of them, and a relay killed with -9 takes only its own
 * clients, which get their address back on another relay (docs/CLUSTER.md).
 */
import t from 'tap';
import { formatIpv4 } from '../../protocol/address.ts';
import { PacketType } from '../../protocol/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startNatsServer } from '../helpers/nats-server.ts';
import { within } from '../helpers/wait.ts';
import { clusterRelays, type Cleanup, type StartedRelay } from './cluster-relays.ts';
import { killHard } from '../helpers/child-process.ts';

const nats = await startNatsServer(t);

const relays = (t: Cleanup, ids: string[]): Promise<StartedRelay[]> => clusterRelays(t, ids, [nats.url]);

/** The 1,000 distinct loopback source addresses 127.1.0.1 … 127.1.3.250. */
const source = (i: number): string => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;

t.test('1,000 concurrent first connections spread over three relays: one address per real IP', async (t) => {
  const [r1, r2, r3] = await relays(t, ['r1', 'r2', 'r3']);
  const ports = [r1.port, r2.port, r3.port];
  const clients: RawClient[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  // Every real IP goes to one relay; every fifth also to the next relay at the same moment.
  const opens = Array.from({ length: 1000 }, (_, i) => {
    const targets = i % 5 === 0 ? [ports[i % 3], ports[(i + 1) % 3]] : [ports[i % 3]];
    return targets.map(async (port) => {
      const { client, virtualIp } = await RawClient.open({ port, localAddress: source(i) });
      clients.push(client);
      return [source(i), virtualIp.ip] as const;
    });
  }).flat();
  const results = await within('1,000 real IPs told their virtual IP', Promise.all(opens), 60_000);
  const byIp = new Map<string, number>();
  for (const [ip, v] of results) {
    const seen = byIp.get(ip);
    if (seen !== undefined && seen !== v) t.fail(`${ip} was told ${formatIpv4(seen)} by one relay and ${formatIpv4(v)} by another`);
    byIp.set(ip, v);
  }
  t.equal(byIp.size, 1000);
  t.equal(new Set(byIp.values()).size, 1000, 'no virtual IP was told to two real IPs');
});

t.test('a relay killed with -9 drops only its own clients; they get their address back on another relay', async (t) => {
  const [r4, r5, r6] = await relays(t, ['r4', 'r5', 'r6']);
  const mine = await RawClient.open({ port: r5.port, localAddress: '127.2.0.1' });
  const other = await RawClient.open({ port: r4.port, localAddress: '127.2.0.2' });
  t.teardown(() => Promise.all([mine.client.close(), other.client.close()]));
  await killHard(r5.run.child);
  await within("the killed relay's client sees its connection end", mine.client.closed);
  // The client takes several relay addresses and moves on to the next one.
  const again = await RawClient.open({ port: r6.port, localAddress: '127.2.0.1' });
  t.teardown(() => again.client.close());
  t.equal(formatIpv4(again.virtualIp.ip), formatIpv4(mine.virtualIp.ip), 'the same virtual IP on another relay');
  other.client.send({ type: PacketType.Ping, nonce: 4242 });
  t.equal((await other.client.next(PacketType.Pong)).nonce, 4242, "the other relay's client is still served");
});
