import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { dayOf, openAddressStore, StoreError, type AddressStore, type StoreWriteInfo } from '../../storage/index.ts';
import { addressStoreContract, type Cleanup } from './address-store.contract.ts';

const SHARDS = 16;

async function tempDb(t: Cleanup): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A nested path checks that parent directories are created.
  return path.join(dir, 'data', 'alphanet.json');
}

async function openTracked(t: Cleanup, dbPath: string, options: { subnet?: string; onWrite?: (info: StoreWriteInfo) => void } = {}): Promise<AddressStore> {
  const store = await openAddressStore({ path: dbPath, shards: SHARDS, ...options });
  t.teardown(() => store.close().catch(() => undefined));
  return store;
}

addressStoreContract(t, async (t) => {
  const dbPath = await tempDb(t);
  return { persistent: true, open: (options) => openTracked(t, dbPath, options) };
});

t.test('layout: a small manifest, a journal, and shard files written at checkpoints', async (t) => {
  const dbPath = await tempDb(t);
  const shardDir = `${dbPath}.shards`;
  const store = await openTracked(t, dbPath);
  const v = await store.findOrAllocate('198.51.100.7');
  const today = dayOf(Date.now());
  const manifest = JSON.parse(await readFile(dbPath, 'utf8')) as Record<string, unknown>;
  t.match(manifest, { version: 2, subnet: '100.64.0.0/10', shards: SHARDS, baselineDay: today, checkpoint: { journal: 0 }, journals: { 1: null } });
  t.same((manifest.checkpoint as { counts: number[] }).counts, new Array(SHARDS).fill(0), 'nothing checkpointed yet');
  t.same(await readdir(shardDir), ['journal-000001.jsonl'], 'a batch is one journal append, no shard rewrite');
  t.equal(
    await readFile(path.join(shardDir, 'journal-000001.jsonl'), 'utf8'),
    `{"journal":1,"store":"${String(manifest.id)}"}\n["198.51.100.7",${v},${today}]\n`,
    'a header naming the generation and the store, then one record with the day it was seen',
  );
  await store.close();
  const files = (await readdir(shardDir)).sort();
  t.equal(files.length, 1, 'close checkpoints: the journal is gone, only the dirty shard was written');
  t.match(files[0], /^\d{3}\.json$/);
  t.same(JSON.parse(await readFile(path.join(shardDir, files[0]), 'utf8')), { entries: { '198.51.100.7': v }, seen: { '198.51.100.7': today } });
  const closed = JSON.parse(await readFile(dbPath, 'utf8')) as { checkpoint: { journal: number; counts: number[] }; journals: object };
  t.equal(closed.checkpoint.journal, 1, 'the checkpoint covers the journal it deleted');
  t.equal(closed.checkpoint.counts[Number(files[0].slice(0, 3))], 1, 'and records the shard file\'s entry count');
  t.same(closed.journals, {});
  t.same((await readdir(path.dirname(dbPath))).sort(), ['alphanet.json', 'alphanet.json.shards'], 'the lock file is removed on close');
});

t.test('checkpoints every checkpointEntries and keeps everything across reopen', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openAddressStore({ path: dbPath, shards: SHARDS, checkpointEntries: 100 });
  t.teardown(() => store.close().catch(() => undefined));
  const mapped = new Map<string, number>();
  for (let round = 0; round < 5; round++) {
    const ips = Array.from({ length: 60 }, (_, i) => `10.1.${round}.${i}`);
    const vs = await Promise.all(ips.map((ip) => store.findOrAllocate(ip)));
    ips.forEach((ip, i) => mapped.set(ip, vs[i]));
  }
  // Mid-run, a reader sees the same map whatever mix of shards and journal it finds.
  const reader = await openAddressStore({ path: dbPath, access: 'read' });
  t.equal(reader.size, 300);
  for (const [ip, v] of mapped) if (reader.lookup(ip) !== v) t.fail(`${ip} not visible to a reader`);
  await reader.close();
  await store.close();
  t.same((await readdir(`${dbPath}.shards`)).filter((n) => n.startsWith('journal')), [], 'no journal left after close');
  const reopened = await openTracked(t, dbPath);
  t.equal(reopened.size, 300);
  for (const [ip, v] of mapped) if (reopened.lookup(ip) !== v) t.fail(`${ip} lost after checkpoints`);
});

t.test('a torn last journal line is skipped; a bad line before it is refused', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath);
  await store.close();
  const { id } = JSON.parse(await readFile(dbPath, 'utf8')) as { id: string };
  const journal = path.join(`${dbPath}.shards`, 'journal-000007.jsonl');
  const header = `{"journal":7,"store":"${id}"}\n`;
  await writeFile(journal, `${header}["198.51.100.7",1681915905]\n["198.51.100.8",16819`);
  const reopened = await openAddressStore({ path: dbPath });
  t.equal(reopened.lookup('198.51.100.7'), 1681915905, 'complete lines replayed');
  t.equal(reopened.lookup('198.51.100.8'), undefined, 'the torn line was never acknowledged');
  t.equal(await reopened.findOrAllocate('198.51.100.9'), 1681915906, 'allocation continues past replayed entries');
  await reopened.close();
  // The reopened store checkpointed generation 7 away: the bad journal is the generation after its checkpoint.
  const { checkpoint } = JSON.parse(await readFile(dbPath, 'utf8')) as { checkpoint: { journal: number } };
  const generation = checkpoint.journal + 1;
  const later = path.join(`${dbPath}.shards`, `journal-${String(generation).padStart(6, '0')}.jsonl`);
  const badLater = Buffer.from(`{"journal":${generation},"store":"${id}"}\n["198.51.100.7",1681915905]\nnot json\n`);
  await writeFile(later, badLater);
  await t.rejects(openAddressStore({ path: dbPath }), { code: 'ERR_STORE_CORRUPT', message: new RegExp(`${later.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 3`) });
  t.same(await readFile(later), badLater, 'never overwritten');
});

t.test('durability ordering: once findOrAllocate resolves, a second store on the same path sees it', async (t) => {
  const dbPath = await tempDb(t);
  const writer = await openTracked(t, dbPath);
  for (const realIp of ['198.51.100.1', '198.51.100.2', '2001:db8::5']) {
    const v = await writer.findOrAllocate(realIp);
    const reader = await openAddressStore({ path: dbPath, access: 'read' });
    t.equal(reader.lookup(realIp), v, `${realIp} is on disk when its promise resolves`);
    await reader.close();
  }
});

t.test('group commit: a burst becomes one write per batch, not one per call', async (t) => {
  const dbPath = await tempDb(t);
  const writes: StoreWriteInfo[] = [];
  const store = await openTracked(t, dbPath, { onWrite: (info) => writes.push(info) });
  const started = performance.now();
  await Promise.all(Array.from({ length: 500 }, (_, i) => store.findOrAllocate(`10.0.${i >> 8}.${i & 255}`)));
  const elapsedMs = performance.now() - started;
  t.equal(writes.length, 1, 'one write for a burst arriving in one turn');
  t.equal(writes[0].entries, 500);
  t.equal(writes[0].shards, 0, 'a journal append rewrites no shard');
  // The reported time is the write's own: within the burst's wall time, not a timestamp or garbage.
  t.ok(writes[0].durationMs >= 0 && writes[0].durationMs <= elapsedMs + 1, `write took ${writes[0].durationMs} ms of the burst's ${elapsedMs.toFixed(1)} ms`);
});

t.test('a manifest that is not JSON is refused, named, and left byte-identical', async (t) => {
  const dbPath = await tempDb(t);
  await mkdir(path.dirname(dbPath), { recursive: true });
  const garbage = Buffer.from('{"version":1,"subnet":"100.64.0.0/10",\x00\xff torn');
  await writeFile(dbPath, garbage);
  const error = await openAddressStore({ path: dbPath }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(error, StoreError);
  t.match(error, { code: 'ERR_STORE_CORRUPT' });
  t.ok((error as Error).message.includes(dbPath), 'the message names the file');
  t.same(await readFile(dbPath), garbage, 'never overwritten');
});

t.test('a manifest of the wrong shape is refused', async (t) => {
  const dbPath = await tempDb(t);
  await mkdir(path.dirname(dbPath), { recursive: true });
  await writeFile(dbPath, '{"version":99}');
  await t.rejects(openAddressStore({ path: dbPath }), { code: 'ERR_STORE_CORRUPT', message: /unsupported version/ });
});

t.test('a shard that is not JSON is refused, named, and left byte-identical', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath);
  await store.findOrAllocate('198.51.100.7');
  await store.close();
  const [shard] = await readdir(`${dbPath}.shards`);
  const shardPath = path.join(`${dbPath}.shards`, shard);
  const garbage = Buffer.from('{"entries":{"198.51.100.7":16');
  await writeFile(shardPath, garbage);
  const error = await openAddressStore({ path: dbPath }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match(error, { code: 'ERR_STORE_CORRUPT' });
  t.ok((error as Error).message.includes(shardPath), 'the message names the shard file');
  t.same(await readFile(shardPath), garbage, 'never overwritten');
});

t.test('a shard giving one virtual IP to two real IPs is refused', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath, {});
  const a = await store.findOrAllocate('198.51.100.7');
  await store.close();
  const [shard] = await readdir(`${dbPath}.shards`);
  const shardPath = path.join(`${dbPath}.shards`, shard);
  const data = JSON.parse(await readFile(shardPath, 'utf8')) as { entries: Record<string, number> };
  // Find a second real IP that hashes into the same shard, so only the duplicate check can catch it.
  for (let i = 1; ; i++) {
    const candidate = `203.0.113.${i}`;
    data.entries[candidate] = a;
    await writeFile(shardPath, JSON.stringify(data));
    const error = await openAddressStore({ path: dbPath }).then(() => undefined, (e: unknown) => e);
    if ((error as Error | undefined)?.message.includes('belongs in shard')) {
      delete data.entries[candidate];
      continue;
    }
    t.match(error, { code: 'ERR_STORE_CORRUPT', message: /given to two real IPs/ });
    break;
  }
});

t.test('a store made with one subnet refuses another', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath, { subnet: '10.99.0.0/16' });
  await store.close();
  await t.rejects(openAddressStore({ path: dbPath, subnet: '100.64.0.0/10' }), {
    code: 'ERR_SUBNET_MISMATCH',
    message: /10\.99\.0\.0\/16.*100\.64\.0\.0\/10/,
  });
});

t.test('leftover temp files from a crash are ignored, and removed by the next writer', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath);
  const committed = await store.findOrAllocate('198.51.100.7');
  await store.close();
  const [shard] = await readdir(`${dbPath}.shards`);
  await writeFile(path.join(`${dbPath}.shards`, `${shard}.tmp`), '{"entries":{"198.51.100.7":1,"198.5');
  await writeFile(`${dbPath}.tmp`, '\x00\x00\x00');
  const reopened = await openTracked(t, dbPath);
  t.equal(reopened.lookup('198.51.100.7'), committed, 'the last committed state');
  t.equal(reopened.size, 1);
  t.equal((await readdir(`${dbPath}.shards`)).filter((n) => n.endsWith('.tmp')).length, 1, 'opening alone touches nothing');
  await reopened.findOrAllocate('198.51.100.8');
  t.same((await readdir(`${dbPath}.shards`)).filter((n) => n.endsWith('.tmp')), [], 'shard temp file removed');
  t.same((await readdir(path.dirname(dbPath))).filter((n) => n.endsWith('.tmp')), [], 'manifest temp file removed');
});

t.test('a failed write rejects with ERR_STORE_WRITE and a later call retries it', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath);
  const shardDir = `${dbPath}.shards`;
  // Root ignores permissions, so break the directory itself: a file where it should be.
  await rm(shardDir, { recursive: true });
  await writeFile(shardDir, 'not a directory');
  const error = await store.findOrAllocate('198.51.100.7').then(() => undefined, (e: unknown) => e);
  t.type(error, StoreError);
  t.match(error, { code: 'ERR_STORE_WRITE', message: /alphanet\.json\.shards/ });
  t.equal(store.lookup('198.51.100.7'), undefined, 'not durable, so not visible');
  t.equal(store.size, 0);
  await rm(shardDir);
  await mkdir(shardDir);
  const v = await store.findOrAllocate('198.51.100.7');
  t.equal(store.lookup('198.51.100.7'), v);
  const other = await store.findOrAllocate('198.51.100.8');
  t.not(other, v, 'the reserved address was not handed out twice');
  const reader = await openAddressStore({ path: dbPath, access: 'read' });
  t.equal(reader.lookup('198.51.100.7'), v, 'the retry reached the disk');
  await reader.close();
});

t.test('a writer killed with SIGKILL mid-write reopens with every acknowledged mapping', async (t) => {
  const dbPath = await tempDb(t);
  const fixture = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dbPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  // Taken before reading: a writer that dies early must fail the spec, not hang it.
  const exited = once(child, 'exit');
  const acknowledged = new Map<string, number>();
  const KILL_AFTER = 300;
  for await (const line of createInterface({ input: child.stdout })) {
    const [realIp, virtualIp] = line.split(' ');
    acknowledged.set(realIp, Number(virtualIp));
    if (acknowledged.size === KILL_AFTER) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
  t.equal(child.signalCode, 'SIGKILL');
  const store = await openTracked(t, dbPath);
  for (const [realIp, v] of acknowledged) if (store.lookup(realIp) !== v) t.fail(`${realIp} lost after SIGKILL`);
  t.ok(store.size >= KILL_AFTER, `all ${KILL_AFTER} acknowledged mappings survive (store holds ${store.size})`);
  const virtualIps = [...store.entries()].map((e) => e.virtualIp);
  t.equal(new Set(virtualIps).size, virtualIps.length, 'no address given twice');
  const fresh = await store.findOrAllocate('198.51.100.200');
  t.notOk(virtualIps.includes(fresh), 'allocation continues past every stored address');
});
