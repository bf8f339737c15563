/**
 * Issue 9, finding 8 (last part): on a full disk each failed batch left an empty journal file
 * (247 after 3,448 refusals). A file-size limit (`ulimit -f`, with SIGXFSZ ignored so writes fail
 * with EFBIG instead of killing the process) makes appends fail the way a full disk does.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { openTracked, tempDb } from './store-files.ts';

const ATTEMPTS = 25;
const LIMIT_KB = 256;
const CHILD_TIMEOUT_MS = 60_000;

t.test('failed batches leave no files behind, and nothing unacknowledged survives', async (t) => {
  const dbPath = await tempDb(t);
  const fixture = fileURLToPath(new URL('./fixtures/full-disk-writer.ts', import.meta.url));
  // Without tap's NODE_OPTIONS hooks (re-added to any spawn's env): their process-info writer
  // would be killed by the file-size limit.
  const script = `unset NODE_OPTIONS; trap '' XFSZ; ulimit -f ${LIMIT_KB}; exec "$0" --import tsx "$1" "$2" "$3"`;
  const child = spawn('bash', ['-c', script, process.execPath, fixture, dbPath, String(ATTEMPTS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  t.teardown(() => clearTimeout(timer));
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  t.equal(code, 0, `the writer finished within ${CHILD_TIMEOUT_MS} ms (signal: ${signal})`);
  const report = JSON.parse(out) as { first: number; codes: string[]; journals: string[] };
  t.same(report.codes, new Array(ATTEMPTS).fill('ERR_STORE_WRITE'), `all ${ATTEMPTS} oversized batches were refused`);
  t.same(report.journals, ['journal-000001.jsonl'], 'one journal file, however many batches failed');
  const journal = path.join(`${dbPath}.shards`, 'journal-000001.jsonl');
  const lines = (await readFile(journal, 'utf8')).split('\n');
  t.equal(lines.length, 3, 'the header and the one acknowledged record: every failed append was cut back');
  t.ok((await stat(journal)).size < 200);
  const store = await openTracked(t, dbPath);
  t.equal(store.lookup('198.51.100.1'), report.first, 'the acknowledged mapping is there');
  t.equal(store.size, 1, 'none of the refused ones is');
  t.ok(await store.findOrAllocate('10.0.0.1'), 'with room again, the same real IPs allocate');
});
