/**
 * Issue 9, finding 12: a full pool refused new real IPs forever, and one IPv6 /64 could exhaust
 * the default /10. Now: last-seen days recorded in the store, an explicit reclaim of entries
 * unseen for a given time, exhaustion messages that point to it, and a cap per IPv6 prefix.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { DAY_MS, dayOf, openAddressStore, openMemoryAddressStore } from '../../storage/index.ts';
import { crashCopy, openTracked, tempDb } from './store-files.ts';

const NOW = Date.UTC(2026, 11, 2, 12);
const clock = (days: number) => () => NOW + days * DAY_MS;

/** Every journal record (header excluded) of a store still open. */
async function journalRecords(dbPath: string): Promise<unknown[][]> {
  const dir = `${dbPath}.shards`;
  const records: unknown[][] = [];
  for (const name of (await readdir(dir)).filter((n) => n.startsWith('journal-')).sort()) {
    const lines = (await readFile(path.join(dir, name), 'utf8')).split('\n').filter(Boolean).slice(1);
    records.push(...lines.map((l) => JSON.parse(l) as unknown[]));
  }
  return records;
}

t.test('last-seen days are recorded at most once per entry per day, and survive reopening', async (t) => {
  const dbPath = await tempDb(t);
  const first = await openAddressStore({ path: dbPath, now: clock(-200) });
  const a = await first.findOrAllocate('198.51.100.1');
  await first.findOrAllocate('198.51.100.2');
  await first.close();

  const later = await openTracked(t, dbPath, { now: clock(-10) });
  for (let i = 0; i < 5; i++) t.equal(await later.findOrAllocate('198.51.100.1'), a, 'a reconnect keeps the address');
  later.touch('198.51.100.1');
  await later.flush();
  const records = await journalRecords(dbPath);
  t.same(records, [['198.51.100.1', a, dayOf(NOW) - 10]], 'five reconnects and a disconnect on one day: one record');
  await later.close();

  const store = await openTracked(t, dbPath, { now: clock(0) });
  t.equal(store.lastSeen('198.51.100.1')?.getTime(), (dayOf(NOW) - 10) * DAY_MS);
  t.equal(store.lastSeen('198.51.100.2')?.getTime(), (dayOf(NOW) - 200) * DAY_MS);
  t.equal(store.lastSeen('198.51.100.3'), undefined);
});

t.test('a full pool refuses with a message pointing to the reclaim command; reclaim frees only the unseen', async (t) => {
  const dbPath = await tempDb(t);
  const subnet = '192.0.2.8/29';
  const old = await openAddressStore({ path: dbPath, subnet, now: clock(-120) });
  const stale = await Promise.all(['203.0.113.1', '203.0.113.2'].map((ip) => old.findOrAllocate(ip)));
  await old.close();
  const recent = await openAddressStore({ path: dbPath, subnet, now: clock(-5) });
  const kept = await Promise.all(['203.0.113.3', '203.0.113.4', '203.0.113.5', '203.0.113.6'].map((ip) => recent.findOrAllocate(ip)));
  await t.rejects(recent.findOrAllocate('203.0.113.7'), {
    code: 'ERR_ADDRESS_SPACE_EXHAUSTED',
    message: /every one of the 6 usable addresses of 192\.0\.2\.8\/29 is taken.*alphanet store reclaim --unseen-for 90d/,
  });
  await recent.close();

  const operator = await openAddressStore({ path: dbPath, subnet, now: clock(0) });
  t.same(
    (await operator.reclaim(90 * DAY_MS, true)).map((e) => e.realIp).sort(),
    ['203.0.113.1', '203.0.113.2'],
    'a dry run lists the entries unseen for 90 days',
  );
  t.equal(operator.size, 6, 'and changes nothing');
  const reclaimed = await operator.reclaim(90 * DAY_MS);
  t.same(reclaimed.map((e) => e.virtualIp).sort(), stale.slice().sort());
  t.equal(operator.lookup('203.0.113.1'), undefined);
  t.equal(operator.free, 2);
  await operator.close();

  const relay = await openTracked(t, dbPath, { subnet, now: clock(0) });
  t.equal(relay.size, 4, 'the reclaim is durable');
  for (const [i, ip] of ['203.0.113.3', '203.0.113.4', '203.0.113.5', '203.0.113.6'].entries()) t.equal(relay.lookup(ip), kept[i], `${ip} keeps its address`);
  const fresh = await relay.findOrAllocate('203.0.113.7');
  t.ok(stale.includes(fresh), 'a new real IP gets a reclaimed address');
  t.equal(await relay.findOrAllocate('203.0.113.1'), stale.find((v) => v !== fresh), 'a reclaimed real IP coming back is a new client');
});

t.test('a reclaim cut short by a crash is finished at the next open', async (t) => {
  const dbPath = await tempDb(t);
  const old = await openAddressStore({ path: dbPath, now: clock(-100) });
  await old.findOrAllocate('198.51.100.1');
  await old.close();
  const operator = await openAddressStore({ path: dbPath, now: clock(0) });
  await operator.reclaim(90 * DAY_MS);
  // Crash here: the reclaim record is in the journal, the shards still hold the entry.
  const crashed = await crashCopy(t, operator, dbPath);
  await operator.close();
  const reopened = await openTracked(t, crashed);
  t.equal(reopened.lookup('198.51.100.1'), undefined, 'the journaled reclaim is applied');
  t.same(await journalRecords(crashed), [], 'and checkpointed at open, before any new allocation could reuse the address');
  const shards = (await readdir(`${crashed}.shards`)).filter((n) => n.endsWith('.json'));
  for (const name of shards) t.notMatch(await readFile(path.join(`${crashed}.shards`, name), 'utf8'), '198.51.100.1', `${name} no longer holds it`);
});

t.test('IPv6: one prefix holds at most its cap; other prefixes and IPv4 are unaffected', async (t) => {
  const store = await openMemoryAddressStore({ ipv6PrefixCap: 3, now: clock(-100) });
  t.teardown(() => store.close());
  for (let i = 1; i <= 3; i++) await store.findOrAllocate(`2001:db8:0:1::${i}`);
  await t.rejects(store.findOrAllocate('2001:db8:0:1:ffff::9'), {
    code: 'ERR_ADDRESS_SPACE_EXHAUSTED',
    message: /the IPv6 prefix 2001:db8:0:1::\/64 of 2001:db8:0:1:ffff::9 already holds 3 virtual IPs.*--ipv6-prefix-cap.*alphanet store reclaim/,
  });
  t.ok(await store.findOrAllocate('2001:db8:0:2::1'), 'another /64 has its own budget');
  t.ok(await store.findOrAllocate('203.0.113.1'), 'IPv4 is not capped');
  t.ok(await store.findOrAllocate('::ffff:203.0.113.2'), 'IPv4-mapped addresses count as IPv4');
  t.ok(await store.findOrAllocate('2001:db8:0:1::2'), 'a known real IP still resolves at the cap');
});

t.test('IPv6 cap: counted across reopen, freed by reclaim, configurable by prefix length, 0 = none', async (t) => {
  const dbPath = await tempDb(t);
  const first = await openAddressStore({ path: dbPath, ipv6PrefixCap: 2, now: clock(-100) });
  await first.findOrAllocate('2001:db8:0:1::1');
  await first.findOrAllocate('2001:db8:0:1::2');
  await first.close();
  const second = await openAddressStore({ path: dbPath, ipv6PrefixCap: 2, now: clock(0) });
  await t.rejects(second.findOrAllocate('2001:db8:0:1::3'), { code: 'ERR_ADDRESS_SPACE_EXHAUSTED' }, 'the cap counts stored entries');
  await second.reclaim(90 * DAY_MS);
  t.ok(await second.findOrAllocate('2001:db8:0:1::3'), 'reclaiming frees room in the prefix');
  await second.close();
  const wide = await openAddressStore({ path: dbPath, ipv6PrefixCap: 2, ipv6PrefixLength: 48 });
  await wide.findOrAllocate('2001:db8:0:2::1');
  await t.rejects(wide.findOrAllocate('2001:db8:0:3::1'), { code: 'ERR_ADDRESS_SPACE_EXHAUSTED', message: /2001:db8::\/48/ }, 'counted per /48');
  await wide.close();
  const uncapped = await openTracked(t, dbPath, { ipv6PrefixCap: 0 });
  for (let i = 10; i < 20; i++) await uncapped.findOrAllocate(`2001:db8:0:1::${i}`);
  t.equal(uncapped.size, 12);
});
