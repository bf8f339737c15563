/**
 * The cluster's address map in identity mode `key` (storage/nats-kv-store.ts, docs/CLUSTER.md):
 * addresses keyed by proven keys with the same create-only rule as real IPs, the mode recorded in
 * the bucket, and a store of the other mode refused, as a lowdb store of the other mode is.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { NatsAddressStore, openBucket } from '../../storage/index.ts';
import { natsConnections, startNatsServer } from '../helpers/nats-server.ts';

const nats = await startNatsServer(t);
const connection = natsConnections(t, nats.url);

let buckets = 0;
const keyEntry = (): string => `key:${randomBytes(32).toString('base64url')}`;

t.test('keys get addresses by create-only keys, shared by every relay of the cluster', async (t) => {
  const bucket = `keys-${++buckets}`;
  const stores = await Promise.all(['k1', 'k2', 'k3'].map(async (relayId) => NatsAddressStore.open({ connection: await connection(), relayId, bucket, identityMode: 'key' })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  t.equal(stores[0].identityMode, 'key');
  const keys = Array.from({ length: 300 }, keyEntry);
  // Each key at one relay, every third also at a second relay at the same instant.
  const results = await Promise.all(
    keys.flatMap((key, i) => {
      const first = stores[i % 3].findOrAllocate(key).then((v) => [key, v] as const);
      return i % 3 === 0 ? [first, stores[(i + 1) % 3].findOrAllocate(key).then((v) => [key, v] as const)] : [first];
    }),
  );
  const byKey = new Map<string, number>();
  for (const [key, v] of results) {
    const seen = byKey.get(key);
    if (seen !== undefined && seen !== v) t.fail(`${key} got two addresses: ${seen} and ${v}`);
    byKey.set(key, v);
  }
  t.equal(new Set(byKey.values()).size, keys.length, 'no address was handed to two keys');
  const raw = await (await openBucket(await connection(), bucket, { history: 1 })).get(`key.${keys[0].slice(4)}`);
  t.match(raw?.json(), { realIp: keys[0], virtualIp: String }, 'the assignment sits under key.<base64url>');
  // A relay started later reads every key's address, and the same key asked there is a cache hit.
  const late = await NatsAddressStore.open({ connection: await connection(), relayId: 'k4', bucket, identityMode: 'key' });
  t.teardown(() => late.close());
  for (const [key, v] of byKey) if (late.lookup(key) !== v) t.fail(`${key}: the late relay reads ${late.lookup(key)}, not ${v}`);
  t.equal(await late.findOrAllocate(keys[1]), byKey.get(keys[1]), 'a key keeps its address on another relay');
  await t.rejects(late.findOrAllocate('10.1.2.3'), { code: 'ERR_INVALID_REAL_IP', message: /key entry/ }, 'a key-mode map takes no real IP');
});

t.test('a relay of the other mode is refused, both ways, saying what the bucket holds', async (t) => {
  const keyBucket = `mode-key-${++buckets}`;
  const keys = await NatsAddressStore.open({ connection: await connection(), relayId: 'm1', bucket: keyBucket, identityMode: 'key' });
  t.teardown(() => keys.close());
  await t.rejects(NatsAddressStore.open({ connection: await connection(), relayId: 'm2', bucket: keyBucket }), {
    code: 'ERR_IDENTITY_MODE_MISMATCH',
    message: /identity-mode key map.*asks for --identity-mode ip.*Start every relay of the cluster with --identity-mode key/s,
  });
  const ipBucket = `mode-ip-${++buckets}`;
  const ips = await NatsAddressStore.open({ connection: await connection(), relayId: 'm3', bucket: ipBucket });
  t.teardown(() => ips.close());
  t.equal(ips.identityMode, 'ip');
  await t.rejects(NatsAddressStore.open({ connection: await connection(), relayId: 'm4', bucket: ipBucket, identityMode: 'key' }), {
    code: 'ERR_IDENTITY_MODE_MISMATCH',
    message: /identity-mode ip map/,
  });
});

t.test('relays of both modes starting at once on a new bucket: exactly one mode wins, the other is refused', async (t) => {
  const bucket = `race-${++buckets}`;
  const modes = ['ip', 'key', 'ip', 'key'] as const;
  const outcomes = await Promise.allSettled(modes.map(async (identityMode, i) => NatsAddressStore.open({ connection: await connection(), relayId: `race${i}`, bucket, identityMode })));
  const opened = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  t.teardown(() => Promise.all(opened.map((s) => s.close())));
  t.equal(new Set(opened.map((s) => s.identityMode)).size, 1, 'every store that opened has the one mode');
  t.equal(opened.length, 2);
  for (const o of outcomes) if (o.status === 'rejected') t.match(o.reason, { code: 'ERR_IDENTITY_MODE_MISMATCH' });
});

t.test('a bucket from before modes (assignments, no mode key) is an ip map', async (t) => {
  const bucket = `old-${++buckets}`;
  const kv = await openBucket(await connection(), bucket, { history: 1 });
  await kv.put('subnet', '100.64.0.0/10', { previousSeq: 0 });
  await kv.put('ip.10.9.8.7', JSON.stringify({ realIp: '10.9.8.7', virtualIp: '100.64.0.1', relay: 'old' }), { previousSeq: 0 });
  await t.rejects(NatsAddressStore.open({ connection: await connection(), relayId: 'o1', bucket, identityMode: 'key' }), { code: 'ERR_IDENTITY_MODE_MISMATCH' });
  const store = await NatsAddressStore.open({ connection: await connection(), relayId: 'o2', bucket });
  t.teardown(() => store.close());
  t.equal(store.lookup('10.9.8.7'), (100 << 24) + (64 << 16) + 1, 'its assignments stand');
  t.equal((await kv.get('mode'))?.string(), 'ip', 'and the bucket now records its mode');
});
