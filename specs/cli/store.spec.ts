/** `alphanet store list|stats|reclaim` as real processes on a real store in a temp directory. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { formatIpv4 } from '../../protocol/address.ts';
import { DAY_MS, formatDay, openAddressStore } from '../../storage/index.ts';
import { parseDuration } from '../../cli/store.ts';
import { runAlphanet, type Run } from './run-alphanet.ts';

function run(args: string[]): Promise<Run> {
  return runAlphanet(['store', ...args]);
}

/** A store with 198.51.100.1 last seen 200 days ago and 198.51.100.2 today. */
async function agedStore(t: Test): Promise<{ db: string; old: number; fresh: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-store-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'alphanet.json');
  const past = await openAddressStore({ path: db, shards: 16, now: () => Date.now() - 200 * DAY_MS });
  const old = await past.findOrAllocate('198.51.100.1');
  await past.close();
  const present = await openAddressStore({ path: db });
  const fresh = await present.findOrAllocate('198.51.100.2');
  await present.close();
  return { db, old, fresh };
}

const today = () => formatDay(Math.floor(Date.now() / DAY_MS));
const longAgo = () => formatDay(Math.floor(Date.now() / DAY_MS) - 200);

t.test('list and stats read the store', async (t) => {
  const { db, old, fresh } = await agedStore(t);
  const list = await run(['list', '--db', db]);
  t.equal(list.code, 0, list.stderr);
  t.equal(list.stdout, `${formatIpv4(old)}\t198.51.100.1\t${longAgo()}\n${formatIpv4(fresh)}\t198.51.100.2\t${today()}\n`);
  const json = await run(['list', '--db', db, '--json']);
  t.same(JSON.parse(json.stdout), [
    { virtualIp: formatIpv4(old), realIp: '198.51.100.1', lastSeen: longAgo() },
    { virtualIp: formatIpv4(fresh), realIp: '198.51.100.2', lastSeen: today() },
  ]);
  const stats = await run(['stats', '--db', db]);
  t.equal(stats.code, 0, stats.stderr);
  t.match(stats.stdout, /subnet +100\.64\.0\.0\/10 \(4194302 usable addresses\)\nentries +2\nfree +4194300\nunseen +1 for over 30d, 1 for over 90d, 0 for over 365d\nin use +no \(reclaim can run\)\n$/);
});

t.test('reclaim --dry-run lists and writes nothing; reclaim gives the addresses back', async (t) => {
  const { db, old } = await agedStore(t);
  const dry = await run(['reclaim', '--unseen-for', '90d', '--db', db, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.equal(dry.stdout, `would reclaim ${formatIpv4(old)} from 198.51.100.1 (last seen ${longAgo()})\nwould reclaim 1 address unseen for 90d; 2 entries, 4194300 addresses free\n`);
  const real = await run(['reclaim', '--unseen-for', '90d', '--db', db]);
  t.equal(real.code, 0, real.stderr);
  t.equal(real.stdout, `reclaimed ${formatIpv4(old)} from 198.51.100.1 (last seen ${longAgo()})\nreclaimed 1 address unseen for 90d; 1 entries remain, 4194301 addresses free\n`);
  const store = await openAddressStore({ path: db, access: 'read' });
  t.equal(store.lookup('198.51.100.1'), undefined, 'reclaimed on disk');
  t.equal(store.size, 1);
  const none = await run(['reclaim', '--unseen-for', '90d', '--db', db]);
  t.match(none.stdout, /^reclaimed 0 addresses/);
});

t.test('reclaim refuses while a relay holds the store; errors are named, exit 1', async (t) => {
  const { db } = await agedStore(t);
  const relayStore = await openAddressStore({ path: db });
  t.teardown(() => relayStore.close());
  const refused = await run(['reclaim', '--unseen-for', '90d', '--db', db]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, new RegExp(`^alphanet store: the address store .* is in use by pid ${process.pid} .*\\(ERR_STORE_LOCKED\\)\\n$`));
  t.equal(refused.stdout, '');
  t.ok(relayStore.lookup('198.51.100.1') !== undefined, 'nothing was reclaimed');
  const listed = await run(['list', '--db', db]);
  t.equal(listed.code, 0, 'list reads beside the running relay');
  const stats = await run(['stats', '--db', db]);
  t.match(stats.stdout, new RegExp(`\nin use +by pid ${process.pid} on .*holding it since `), 'stats names the holder');
  const missing = await run(['stats', '--db', path.join(path.dirname(db), 'nope.json')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /there is no address store at .*nope\.json.*\(ERR_STORE_MISSING\)/);
  t.notOk((await readdir(path.dirname(db))).includes('nope.json'), 'and it did not create one');
  const bad = await run(['reclaim', '--unseen-for', 'soon', '--db', db]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /expected a duration like 90d, 12w or 36h/);
});

t.test('reclaim --cluster refuses, saying why, and touches nothing', async (t) => {
  const refused = await run(['reclaim', '--unseen-for', '90d', '--cluster', 'nats://127.0.0.1:1']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /never reclaimed.*#4320.*two at once.*\(ERR_CLUSTER_RECLAIM\)/s);
  t.equal(refused.stdout, '');
});

t.test('durations', async (t) => {
  t.equal(parseDuration('90d'), 90 * DAY_MS);
  t.equal(parseDuration('2w'), 14 * DAY_MS);
  t.equal(parseDuration('36h'), 36 * 3_600_000);
  for (const bad of ['0d', '90', 'd', '-1d', '1.5d', '1y']) t.throws(() => parseDuration(bad), bad);
});
