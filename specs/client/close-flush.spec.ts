/**
 * A client's close() (actors/client/tcp-transport.ts end()): what it wrote to the relay
 * connection leaves before it closes. close() used to destroy the socket, and a socket closed
 * with unread bytes in it resets the connection (RST): the relay lost whatever of the client's
 * last bytes it had not read yet, and the peer heard "disconnected" without them. The relay here
 * is a real process, stopped (SIGSTOP) while the client, busy with bytes unread, writes its last
 * bytes and closes in one turn; then the relay goes on (SIGCONT) and the peer must get them all.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { childPids, killHard, start } from '../helpers/child-process.ts';
import { startMain } from '../cli/relay-process.ts';
import { clientFor, pseudoRandom, sha256 } from './fixtures.ts';

const CHILD = fileURLToPath(new URL('./close-flush.child.ts', import.meta.url));
const LAST = 256 * 1024;
const BUSY_MS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

t.test('conn.send(last); client.close() with bytes unread: the peer gets every last byte though the relay was stalled', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-close-flush-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = startMain(['--plaintext', '--host', '127.0.0.1', '--port', '0', '--db', path.join(dir, 'db.json')]);
  t.teardown(() => killHard(relay.child).catch(() => {}));
  const [host, port] = (await relay.listening).split(/:(?=\d+$)/);
  const receiver = await clientFor(t, { host, port: Number(port) }, 34, { identity: false });
  const listener = await receiver.listen(9);
  const accepting = listener.accept();
  const child = start(process.execPath, ['--import', 'tsx', CHILD, port, receiver.virtualIp, '9', String(LAST), String(BUSY_MS)]);
  t.teardown(() => void child.child.kill());
  await child.waitFor(/^ready$/m, 30_000);
  const conn = await accepting;
  const chunks: Uint8Array[] = [];
  const reading = (async () => {
    try {
      for await (const chunk of conn) chunks.push(chunk);
    } catch {
      // The sender closed without end(): it is the bytes before that count.
    }
  })();
  child.child.kill('SIGUSR2');
  // While the child is busy: bytes for it, which it will not have read when it closes.
  await sleep(200);
  await conn.send(pseudoRandom(34, 64 * 1024));
  await sleep(400);
  // relay-main may run the relay as its own child (with the shipped node flags): stop both.
  const pids = [relay.child.pid!, ...(await childPids(relay.child.pid!))];
  const signal = (name: NodeJS.Signals) => pids.forEach((pid) => process.kill(pid, name));
  signal('SIGSTOP');
  t.teardown(() => signal('SIGCONT'));
  // The child's busy spell ends; it writes its last bytes and closes while the relay is stopped.
  await sleep(BUSY_MS);
  signal('SIGCONT');
  await child.waitFor(/^closed$/m, 30_000);
  await reading;
  const got = Buffer.concat(chunks);
  t.equal(got.length, LAST, 'every last byte arrived');
  t.equal(sha256(got), sha256(pseudoRandom(33, LAST)), 'intact and in order');
});
