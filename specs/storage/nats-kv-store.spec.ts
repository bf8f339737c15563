/**
 * The cluster's address map in JetStream KV (storage/nats-kv-store.ts): the shared contract, and
 * the cluster's own promise with three stores (three relays, each with its own NATS connection)
 * on one bucket: concurrent first connections never share an address, and one real IP asked on
 * two relays at once gets one address.
 */
import t from 'tap';
import { NatsAddressStore } from '../../storage/index.ts';
import { natsConnections, startNatsServer } from '../helpers/nats-server.ts';
import { addressStoreContract } from './address-store.contract.ts';

const nats = await startNatsServer(t);
const connection = natsConnections(t, nats.url);

let buckets = 0;
const ip4 = (i: number): string => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

const contractConnection = await connection();
// Persistent: a reopened store (a relay's next run) reads the same bucket.
addressStoreContract(t, async () => {
  const bucket = `contract-${++buckets}`;
  return { persistent: true, open: (options) => NatsAddressStore.open({ connection: contractConnection, relayId: 'r1', bucket, subnet: options?.subnet }) };
});

t.test('three relays, 1,000 concurrent first connections spread over them: one address each', async (t) => {
  const bucket = `spread-${++buckets}`;
  const stores = await Promise.all(['r1', 'r2', 'r3'].map(async (relayId) => NatsAddressStore.open({ connection: await connection(), relayId, bucket })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const ips = Array.from({ length: 1000 }, (_, i) => ip4(i + 1));
  // Each real IP arrives at one relay, and a third of them also at a second relay at the same time.
  const calls = ips.flatMap((ip, i) => {
    const first = stores[i % 3].findOrAllocate(ip).then((v) => [ip, v] as const);
    return i % 3 === 0 ? [first, stores[(i + 1) % 3].findOrAllocate(ip).then((v) => [ip, v] as const)] : [first];
  });
  const started = performance.now();
  const results = await Promise.all(calls);
  const seconds = (performance.now() - started) / 1000;
  const byIp = new Map<string, number>();
  for (const [ip, v] of results) {
    const seen = byIp.get(ip);
    if (seen !== undefined && seen !== v) t.fail(`${ip} got two addresses on two relays: ${seen} and ${v}`);
    byIp.set(ip, v);
  }
  t.equal(byIp.size, 1000);
  t.equal(new Set(byIp.values()).size, 1000, 'no virtual IP was handed to two real IPs');
  t.comment(`assigned 1,000 new real IPs over three relays in ${(seconds * 1000).toFixed(0)} ms (${Math.round(1000 / seconds)}/s)`);
  // A fourth relay started afterwards sees every assignment, and its own new ones do not collide.
  const late = await NatsAddressStore.open({ connection: await connection(), relayId: 'r4', bucket });
  t.teardown(() => late.close());
  t.equal(late.size, 1000, 'a relay started later loads the whole map');
  for (const [ip, v] of byIp) if (late.lookup(ip) !== v) t.fail(`${ip}: the late relay reads ${late.lookup(ip)}, not ${v}`);
  const fresh = await Promise.all(Array.from({ length: 100 }, (_, i) => late.findOrAllocate(ip4(5000 + i))));
  const all = new Set([...byIp.values(), ...fresh]);
  t.equal(all.size, 1100, 'the late relay hands out only addresses no one holds');
});

t.test('one real IP asked on three relays at the same instant, 200 times: one address each time', async (t) => {
  const bucket = `race-${++buckets}`;
  const stores = await Promise.all(['r1', 'r2', 'r3'].map(async (relayId) => NatsAddressStore.open({ connection: await connection(), relayId, bucket })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const given = new Map<number, string>();
  for (let round = 0; round < 200; round++) {
    const ip = `198.51.${round >> 8}.${round & 255}`;
    const answers = await Promise.all(stores.map((s) => s.findOrAllocate(ip)));
    if (new Set(answers).size !== 1) t.fail(`${ip} was told ${answers.join(', ')}`);
    const holder = given.get(answers[0]);
    if (holder !== undefined) t.fail(`${answers[0]} told to both ${holder} and ${ip}`);
    given.set(answers[0], ip);
  }
  t.equal(given.size, 200, '200 real IPs, 200 distinct addresses');
  // Addresses that lost a race went back to their relay's own pool: the next ones are still distinct.
  const more = await Promise.all(stores.flatMap((s, i) => Array.from({ length: 50 }, (_, j) => s.findOrAllocate(`203.0.${i}.${j + 1}`))));
  t.equal(new Set([...given.keys(), ...more]).size, 350);
});

t.test('another subnet on the same bucket is refused, naming the one it holds', async (t) => {
  const bucket = `subnet-${++buckets}`;
  const nc = await connection();
  const store = await NatsAddressStore.open({ connection: nc, relayId: 'r1', bucket, subnet: '10.8.0.0/16' });
  t.teardown(() => store.close());
  await t.rejects(NatsAddressStore.open({ connection: nc, relayId: 'r2', bucket }), { code: 'ERR_SUBNET_MISMATCH', message: /10\.8\.0\.0\/16/ });
});

t.test('a restarted relay claims new blocks: an address of its old run is never handed out again', async (t) => {
  const bucket = `restart-${++buckets}`;
  const nc = await connection();
  const first = await NatsAddressStore.open({ connection: nc, relayId: 'r1', bucket, subnet: '192.0.2.0/24', blockSize: 16 });
  const a = await first.findOrAllocate('203.0.113.1');
  await first.close();
  // The same relay id again (a restart, or by mistake a second process with the same name).
  const twins = await Promise.all([1, 2].map(() => NatsAddressStore.open({ connection: nc, relayId: 'r1', bucket, subnet: '192.0.2.0/24', blockSize: 16 })));
  t.teardown(() => Promise.all(twins.map((s) => s.close())));
  const given = await Promise.all(twins.flatMap((s, i) => Array.from({ length: 20 }, (_, j) => s.findOrAllocate(`198.51.100.${i * 50 + j + 1}`))));
  t.equal(new Set([a, ...given]).size, 41, 'two processes with one relay id and the old run never share an address');
  t.equal(await twins[0].findOrAllocate('203.0.113.1'), a, 'the old assignment is kept');
});
