/**
 * Issue 9, finding 8: store files that go missing used to start silently and re-issue addresses.
 * Each case removes or cuts a file as an operator (or a bad backup) would, then checks that the
 * open is refused with a code, the file named and what to do, and that nothing was written.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm, truncate, writeFile, mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import t, { type Test } from 'tap';
import { formatIpv4 } from '../../protocol/address.ts';
import { openAddressStore } from '../../storage/index.ts';
import { shardOf } from '../../storage/sharded-store.ts';
import { crashCopy, escapeRegExp, openTracked, populate, shardFileOf, snapshot, tempDb } from './store-files.ts';

/** Opens, expects a refusal matching `expected`, and checks that the store's files are byte-identical. */
async function refused(t: Test, dbPath: string, expected: { code: string; message: RegExp }, options: { subnet?: string } = {}): Promise<void> {
  const root = path.dirname(dbPath);
  const before = await snapshot(root);
  // A crash leaves its (unlocked) lock file behind; the refused open may take it over and remove it.
  before.delete(`${path.basename(dbPath)}.lock`);
  await t.rejects(openAddressStore({ path: dbPath, ...options }), expected);
  t.same(await snapshot(root), before, 'nothing was written, and no lock file is left behind');
}

/** The real IP holding the highest virtual IP. */
function highest(mapped: Map<string, number>): [string, number] {
  return [...mapped].reduce((a, b) => (b[1] > a[1] ? b : a));
}

t.test('deleting the shard that holds the highest address is refused, not a silent restart', async (t) => {
  const dbPath = await tempDb(t);
  const mapped = await populate(dbPath, 60);
  const [realIp, virtualIp] = highest(mapped);
  const shard = await shardFileOf(dbPath, realIp);
  await rm(shard);
  await refused(t, dbPath, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(shard)} is missing, but .* recorded \\d+ entries in it.*Restore the file`) });
  // Before the fix the store opened and handed the lost addresses out again:
  await writeFile(shard, '{"entries":{}}');
  await refused(t, dbPath, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(shard)} holds 0 entries`) });
  await writeFile(shard, '');
  await refused(t, dbPath, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(shard)} is empty`) });
  t.ok(formatIpv4(virtualIp).startsWith('100.64.'), 'sanity: the lost entry was a real allocation');
});

t.test('a restored shard opens again with every address', async (t) => {
  const dbPath = await tempDb(t);
  const mapped = await populate(dbPath, 40);
  const shard = await shardFileOf(dbPath, highest(mapped)[0]);
  const saved = await readFile(shard);
  await rm(shard);
  await t.rejects(openAddressStore({ path: dbPath }), { code: 'ERR_STORE_MISSING' });
  await writeFile(shard, saved);
  const store = await openTracked(t, dbPath);
  t.equal(store.size, 40);
  for (const [realIp, v] of mapped) if (store.lookup(realIp) !== v) t.fail(`${realIp} lost`);
});

t.test('deleting the shard directory is refused', async (t) => {
  const dbPath = await tempDb(t);
  await populate(dbPath, 10);
  await rm(`${dbPath}.shards`, { recursive: true });
  await refused(t, dbPath, {
    code: 'ERR_STORE_MISSING',
    message: new RegExp(`the shard directory ${escapeRegExp(`${dbPath}.shards`)} is missing.*Restore the directory.*move the manifest away`),
  });
});

t.test('changing the manifest\'s shard count is refused, with the count to put back', async (t) => {
  const dbPath = await tempDb(t);
  await populate(dbPath, 30);
  const original = await readFile(dbPath, 'utf8');
  for (const shards of [8, 32, 1024]) {
    await writeFile(dbPath, original.replace('"shards":16', `"shards":${shards}`));
    await refused(t, dbPath, { code: 'ERR_STORE_CORRUPT', message: /put back "shards": 16/ });
  }
  await writeFile(dbPath, original);
  const store = await openTracked(t, dbPath);
  t.equal(store.size, 30, 'the original count opens again');
});

t.test('a version-1 store whose shard count was edited is refused by its shard file names', async (t) => {
  const dbPath = await tempDb(t);
  await populate(dbPath, 30);
  await writeFile(dbPath, JSON.stringify({ version: 1, subnet: '100.64.0.0/10', shards: 8 }));
  await refused(t, dbPath, { code: 'ERR_STORE_CORRUPT', message: /is not a shard of this store.*says 8 shards/ });
});

t.test('the journal after a crash: deleted, emptied or cut is refused; as left, it recovers', async (t) => {
  const source = await tempDb(t);
  const writer = await openTracked(t, source);
  const mapped = new Map<string, number>();
  for (const realIp of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) mapped.set(realIp, await writer.findOrAllocate(realIp));
  const journalOf = (dbPath: string) => path.join(`${dbPath}.shards`, 'journal-000001.jsonl');

  const intact = await crashCopy(t, writer, source);
  const recovered = await openAddressStore({ path: intact });
  for (const [realIp, v] of mapped) t.equal(recovered.lookup(realIp), v, `${realIp} recovered from the journal`);
  await recovered.close();

  const deleted = await crashCopy(t, writer, source);
  await rm(journalOf(deleted));
  await refused(t, deleted, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(journalOf(deleted))} is missing, but .* records it.*Restore the file`) });

  const emptied = await crashCopy(t, writer, source);
  await truncate(journalOf(emptied), 0);
  await refused(t, emptied, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(journalOf(emptied))} is empty`) });

  const cut = await crashCopy(t, writer, source);
  await truncate(journalOf(cut), 10);
  await refused(t, cut, { code: 'ERR_STORE_MISSING', message: /truncated \(its header line is gone\)/ });
});

t.test('a closed journal generation cut at a line boundary is refused by its recorded count', async (t) => {
  const source = await tempDb(t);
  const first = await openTracked(t, source);
  for (let i = 1; i <= 5; i++) await first.findOrAllocate(`198.51.100.${i}`);
  // A crash: the next relay reads generation 1, starts generation 2 and records 1's count (5).
  const crashed = await crashCopy(t, first, source);
  const second = await openTracked(t, crashed);
  await second.findOrAllocate('198.51.100.99');
  const dbPath = await crashCopy(t, second, crashed);
  const manifest = JSON.parse(await readFile(dbPath, 'utf8')) as { journals: Record<string, number | null> };
  t.same(manifest.journals, { 1: 5, 2: null }, 'the manifest knows generation 1 held 5 records');
  const journal = path.join(`${dbPath}.shards`, 'journal-000001.jsonl');
  const lines = (await readFile(journal, 'utf8')).split('\n');
  await writeFile(journal, lines.slice(0, 5).join('\n') + '\n');
  await refused(t, dbPath, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(journal)} holds 4 records, but .* recorded 5 when it was closed`) });
});

t.test('a missing manifest beside store files is refused, and no default manifest is written', async (t) => {
  const dbPath = await tempDb(t);
  await populate(dbPath, 10, { subnet: '10.99.0.0/16' });
  const manifest = await readFile(dbPath);
  await rm(dbPath);
  // Before the fix, this wrote a default-subnet manifest and the next start with the right
  // --subnet was told the store "was created with subnet 100.64.0.0/10".
  await refused(t, dbPath, { code: 'ERR_STORE_MISSING', message: new RegExp(`${escapeRegExp(dbPath)} is missing, but .* holds \\d+ store files.*Restore the manifest`) });
  await refused(t, dbPath, { code: 'ERR_STORE_MISSING', message: /is missing/ }, { subnet: '10.99.0.0/16' });
  await writeFile(dbPath, manifest);
  const store = await openTracked(t, dbPath, { subnet: '10.99.0.0/16' });
  t.equal(store.size, 10, 'the restored manifest opens with the right subnet');
});

t.test('a subnet mismatch writes nothing either', async (t) => {
  const dbPath = await tempDb(t);
  await populate(dbPath, 3, { subnet: '10.99.0.0/16' });
  await refused(t, dbPath, { code: 'ERR_SUBNET_MISMATCH', message: /pass --subnet 10\.99\.0\.0\/16/ });
});

t.test('a new store in a fresh directory still starts, and an empty shard directory is a new store', async (t) => {
  const dbPath = await tempDb(t);
  await mkdir(`${dbPath}.shards`, { recursive: true });
  const store = await openTracked(t, dbPath);
  t.equal(await store.findOrAllocate('198.51.100.1'), 0x64400001);
});

t.test('one virtual IP held by two real IPs names both, dotted, and how to recover', async (t) => {
  const dbPath = await tempDb(t);
  const mapped = await populate(dbPath, 1);
  const [[realIp, v]] = [...mapped];
  const { id, checkpoint } = JSON.parse(await readFile(dbPath, 'utf8')) as { id: string; checkpoint: { journal: number } };
  const generation = checkpoint.journal + 1;
  // What two unlocked relays left behind: the other relay's journal gave the same address away.
  await writeFile(
    path.join(`${dbPath}.shards`, `journal-${String(generation).padStart(6, '0')}.jsonl`),
    `{"journal":${generation},"store":"${id}"}\n["203.0.113.9",${v},20000]\n`,
  );
  await refused(t, dbPath, {
    code: 'ERR_STORE_CORRUPT',
    message: new RegExp(`virtual IP ${escapeRegExp(formatIpv4(v))} is given to two real IPs, ${escapeRegExp(realIp)} and 203\\.0\\.113\\.9.*delete the other's entry`),
  });
});

t.test('a version-1 store opens, is upgraded at its first write, and is checked from then on', async (t) => {
  const dbPath = await tempDb(t);
  const shardDir = `${dbPath}.shards`;
  await mkdir(shardDir, { recursive: true });
  await writeFile(dbPath, JSON.stringify({ version: 1, subnet: '100.64.0.0/10', shards: 16 }));
  // What version 1 left: a shard file (after a checkpoint) and a header-less journal (after a crash).
  const shardName = `${String(shardOf('198.51.100.1', 16)).padStart(3, '0')}.json`;
  await writeFile(path.join(shardDir, shardName), JSON.stringify({ entries: { '198.51.100.1': 0x64400001 } }));
  await writeFile(path.join(shardDir, 'journal-000004.jsonl'), '["198.51.100.2",1681915906]\n');
  const store = await openTracked(t, dbPath);
  t.equal(store.lookup('198.51.100.1'), 0x64400001, 'the shard entry');
  t.equal(store.lookup('198.51.100.2'), 0x64400002, 'the replayed version-1 journal line');
  t.equal(JSON.parse(await readFile(dbPath, 'utf8')).version, 1, 'opening alone writes nothing');
  const v = await store.findOrAllocate('198.51.100.3');
  t.equal(v, 0x64400003);
  const upgraded = JSON.parse(await readFile(dbPath, 'utf8')) as { version: number; legacyJournalsThrough: number; journals: object; checkpoint: { counts: number[] } };
  t.match(upgraded, { version: 2, legacyJournalsThrough: 4, journals: { 4: 1, 5: null } }, 'the first write records what the open found');
  t.equal(upgraded.checkpoint.counts.reduce((a, b) => a + b, 0), 1, 'with the shard counts as found');
  const crashed = await crashCopy(t, store, dbPath);
  const reopened = await openAddressStore({ path: crashed });
  t.equal(reopened.size, 3, 'the upgraded store reopens after a crash, version-1 journal and all');
  await reopened.close();
  await rm(path.join(`${crashed}.shards`, 'journal-000004.jsonl'));
  await refused(t, crashed, { code: 'ERR_STORE_MISSING', message: /journal-000004\.jsonl is missing/ });
});

t.test('five SIGKILLs in a row at different points: every acknowledged mapping survives, every reopen passes the checks', async (t) => {
  const dbPath = await tempDb(t);
  const fixture = new URL('./fixtures/crash-writer.ts', import.meta.url).pathname;
  const acknowledged = new Map<string, number>();
  for (const killAfter of [120, 260, 410, 530, 700]) {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dbPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => void child.kill('SIGKILL'));
    const exited = once(child, 'exit');
    let lines = 0;
    for await (const line of createInterface({ input: child.stdout })) {
      const [realIp, virtualIp] = line.split(' ');
      if (acknowledged.has(realIp) && acknowledged.get(realIp) !== Number(virtualIp)) t.fail(`${realIp} changed address after a crash`);
      acknowledged.set(realIp, Number(virtualIp));
      if (++lines === killAfter) {
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    t.equal(child.signalCode, 'SIGKILL', `killed after ${killAfter} acknowledgements`);
  }
  const store = await openTracked(t, dbPath);
  for (const [realIp, v] of acknowledged) if (store.lookup(realIp) !== v) t.fail(`${realIp} lost`);
  t.ok(store.size >= acknowledged.size, `${acknowledged.size} acknowledged mappings, all there`);
  const virtualIps = [...store.entries()].map((e) => e.virtualIp);
  t.equal(new Set(virtualIps).size, virtualIps.length, 'no address given twice');
});
