/**
 * One contract every AddressStore passes (the memory store and the JSON-file store alike), in the
 * manner of aedes' shared persistence suite.
 */
import type tap from 'tap';
import type { AddressStore } from '../../storage/index.ts';
import { StoreError } from '../../storage/index.ts';

type Tap = typeof tap;
/** The part of a tap test the harness needs. */
export interface Cleanup {
  teardown(fn: () => unknown): void;
}

export interface StoreHarness {
  /** Opens a store; a persistent harness opens the same storage each time. */
  open(options?: { subnet?: string }): Promise<AddressStore>;
  /** True when closing and reopening keeps the map. */
  persistent: boolean;
}

export type HarnessFactory = (t: Cleanup) => Promise<StoreHarness>;

const ip4 = (i: number): string => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

export function addressStoreContract(t: Tap, makeHarness: HarnessFactory): void {
  t.test('same real IP, same address; different real IPs, different addresses', async (t) => {
    const harness = await makeHarness(t);
    const store = await harness.open();
    t.teardown(() => store.close());
    const a = await store.findOrAllocate('198.51.100.7');
    const b = await store.findOrAllocate('198.51.100.8');
    const v6 = await store.findOrAllocate('2001:db8::1');
    t.equal(await store.findOrAllocate('198.51.100.7'), a);
    t.equal(a, 0x64400001, 'the first address of 100.64.0.0/10 after the network address');
    t.not(a, b);
    t.not(v6, a);
    t.not(v6, b);
    t.equal(store.lookup('198.51.100.7'), a);
    t.equal(store.lookup('198.51.100.9'), undefined);
    t.equal(store.lookup('constructor'), undefined, 'inherited names are not entries');
    t.equal(store.size, 3);
    t.same(
      [...store.entries()].sort((x, y) => x.virtualIp - y.virtualIp),
      [
        { realIp: '198.51.100.7', virtualIp: a },
        { realIp: '198.51.100.8', virtualIp: b },
        { realIp: '2001:db8::1', virtualIp: v6 },
      ],
    );
  });

  t.test('2,000 concurrent calls over 1,000 real IPs: no duplicates, nothing lost', async (t) => {
    const harness = await makeHarness(t);
    let store = await harness.open();
    t.teardown(() => store.close());
    const ips = Array.from({ length: 1000 }, (_, i) => ip4(i + 1));
    const calls = [...ips, ...ips.slice().reverse()].map((ip) => store.findOrAllocate(ip).then((v) => [ip, v] as const));
    const results = await Promise.all(calls);
    const byIp = new Map<string, number>();
    for (const [ip, v] of results) {
      const seen = byIp.get(ip);
      if (seen !== undefined && seen !== v) t.fail(`${ip} got ${seen} and ${v}`);
      byIp.set(ip, v);
    }
    t.equal(byIp.size, 1000);
    t.equal(new Set(byIp.values()).size, 1000, 'every real IP has its own address');
    t.equal(store.size, 1000);
    if (harness.persistent) {
      await store.close();
      store = await harness.open();
      t.equal(store.size, 1000, 'all 1,000 survive a reopen');
      for (const [ip, v] of byIp) if (store.lookup(ip) !== v) t.fail(`${ip} lost or changed after reopen`);
      t.equal(await store.findOrAllocate(ips[0]), byIp.get(ips[0]));
    }
  });

  t.test('a /29 gives exactly its 6 usable addresses, then ERR_ADDRESS_SPACE_EXHAUSTED', async (t) => {
    const harness = await makeHarness(t);
    const store = await harness.open({ subnet: '192.0.2.8/29' });
    t.teardown(() => store.close());
    const settled = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => store.findOrAllocate(`203.0.113.${i + 1}`)));
    const given = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    t.same(given.slice().sort((x, y) => x - y), [0xc000020a - 1, 0xc000020a, 0xc000020b, 0xc000020c, 0xc000020d, 0xc000020e], '192.0.2.9 – 192.0.2.14');
    const rejected = settled.find((s) => s.status === 'rejected');
    t.ok(rejected, 'the 7th is refused');
    const reason = rejected?.status === 'rejected' ? (rejected.reason as unknown) : undefined;
    t.type(reason, StoreError);
    t.match(reason, { code: 'ERR_ADDRESS_SPACE_EXHAUSTED', message: /192\.0\.2\.8\/29/ });
    t.equal(await store.findOrAllocate('203.0.113.1'), given[0], 'known real IPs still resolve when full');
    if (harness.persistent) {
      await store.close();
      const reopened = await harness.open({ subnet: '192.0.2.8/29' });
      t.teardown(() => reopened.close());
      await t.rejects(reopened.findOrAllocate('203.0.113.99'), { code: 'ERR_ADDRESS_SPACE_EXHAUSTED' }, 'still full after reopen');
    }
  });

  t.test('refuses what is not an IP, and everything once closed', async (t) => {
    const harness = await makeHarness(t);
    const store = await harness.open();
    await t.rejects(store.findOrAllocate('not-an-ip'), { code: 'ERR_INVALID_REAL_IP' });
    await t.rejects(store.findOrAllocate('__proto__'), { code: 'ERR_INVALID_REAL_IP' });
    const pending = store.findOrAllocate('198.51.100.1');
    await store.close();
    t.ok((await pending) > 0, 'an allocation made before close is flushed by close');
    await t.rejects(store.findOrAllocate('198.51.100.2'), { code: 'ERR_STORE_CLOSED' });
    await t.rejects(store.flush(), { code: 'ERR_STORE_CLOSED' });
    await store.close();
  });

  t.test('invalid subnets are refused', async (t) => {
    const harness = await makeHarness(t);
    for (const subnet of ['100.64.0.0', '100.64.0.1/10', '10.0.0.0/31', '300.0.0.0/8', '10.0.0.0/x']) {
      await t.rejects(harness.open({ subnet }), { code: 'ERR_INVALID_SUBNET' }, subnet);
    }
  });

  t.test('flush resolves once everything allocated so far is committed', async (t) => {
    const harness = await makeHarness(t);
    const store = await harness.open();
    t.teardown(() => store.close());
    const allocations = Array.from({ length: 50 }, (_, i) => store.findOrAllocate(ip4(i + 1)));
    t.equal(store.size, 0, 'nothing counts before it is committed');
    await store.flush();
    t.equal(store.size, 50);
    t.equal(new Set(await Promise.all(allocations)).size, 50);
    await store.flush();
  });
}
