/**
 * Issue 9, finding 9: two relays on one store handed one "permanent" address to two real IPs.
 * The store now holds an exclusive OS lock while open for writing.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { LOCK_SUFFIX, openAddressStore } from '../../storage/index.ts';
import { escapeRegExp, openTracked, tempDb } from './store-files.ts';

const LINE_TIMEOUT_MS = 20_000;

/** Starts the lock-holder fixture and waits for its "ready" line (failing after a timeout). */
async function holder(t: Test, dbPath: string, realIp?: string): Promise<ChildProcessByStdio<Writable, Readable, null>> {
  const fixture = fileURLToPath(new URL('./fixtures/lock-holder.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, dbPath, ...(realIp ? [realIp] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines = createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill('SIGKILL'), LINE_TIMEOUT_MS);
  const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => ['exited'])])) as string[];
  clearTimeout(timer);
  if (line !== 'ready') throw new Error(`lock holder did not get ready (${line}) within ${LINE_TIMEOUT_MS} ms`);
  return child;
}

t.test('a second writer in the same process is refused, naming the holder; readers are not', async (t) => {
  const dbPath = await tempDb(t);
  const first = await openTracked(t, dbPath);
  const v = await first.findOrAllocate('198.51.100.7');
  const lockPath = dbPath + LOCK_SUFFIX;
  await t.rejects(openAddressStore({ path: dbPath }), {
    code: 'ERR_STORE_LOCKED',
    message: new RegExp(`${escapeRegExp(dbPath)} is in use by pid ${process.pid} on .*holding it since \\d{4}-.*lock file ${escapeRegExp(lockPath)}.*stop that process first, or give this one its own --db`),
  });
  const reader = await openAddressStore({ path: dbPath, access: 'read' });
  t.equal(reader.lookup('198.51.100.7'), v, 'a reader needs no lock');
  await t.rejects(reader.findOrAllocate('198.51.100.8'), { code: 'ERR_STORE_READ_ONLY' });
  await reader.close();
  const holderRecord = JSON.parse(await readFile(lockPath, 'utf8')) as { pid: number };
  t.equal(holderRecord.pid, process.pid, 'the lock file names its holder');
  await first.close();
  t.notOk((await readdir(path.dirname(dbPath))).includes(path.basename(lockPath)), 'close removes the lock file');
  const second = await openTracked(t, dbPath);
  t.equal(second.lookup('198.51.100.7'), v, 'once released, the next writer opens');
});

t.test('a failed open releases the lock it took', async (t) => {
  const dbPath = await tempDb(t);
  const store = await openTracked(t, dbPath, { subnet: '10.99.0.0/16' });
  await store.close();
  await t.rejects(openAddressStore({ path: dbPath }), { code: 'ERR_SUBNET_MISMATCH' });
  const again = await openTracked(t, dbPath, { subnet: '10.99.0.0/16' });
  t.equal(again.size, 0);
});

t.test('another process holding the store is named; after it is killed (SIGKILL) the lock is free again', async (t) => {
  const dbPath = await tempDb(t);
  const child = await holder(t, dbPath, '198.51.100.7');
  await t.rejects(openAddressStore({ path: dbPath }), { code: 'ERR_STORE_LOCKED', message: new RegExp(`in use by pid ${child.pid} on .*lock-holder\\.ts`) });
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  t.ok((await stat(dbPath + LOCK_SUFFIX)).isFile(), 'the crash left its lock file behind');
  const store = await openTracked(t, dbPath);
  t.ok(store.lookup('198.51.100.7') !== undefined, 'the lock file of a dead holder is taken over, and its acknowledged mapping is there');
});

t.test('a holder that closes cleanly releases the store to the next process', async (t) => {
  const dbPath = await tempDb(t);
  const child = await holder(t, dbPath);
  const exited = once(child, 'exit');
  child.stdin.end();
  await exited;
  t.equal(child.exitCode, 0);
  const store = await openTracked(t, dbPath);
  t.equal(store.size, 0);
});
