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
import { freePort, startMain } from '../cli/relay-process.ts';
import { connect } from '../../actors/client/index.ts';
import { clientFor, pseudoRandom, relayFor, sha256 } from './fixtures.ts';

const CHILD = fileURLToPath(new URL('./close-flush.child.ts', import.meta.url));
const LAST = 256 * 1024;
const BUSY_MS = 1500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const mode of ['first', 'reconnect'] as const) {
  const which = mode === 'first' ? 'on its first relay connection' : 'after losing its relay and connecting again';
  t.test(`conn.send(last); client.close() with bytes unread, ${which}: the peer gets every last byte though the relay was stalled`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-close-flush-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const port = String(await freePort());
    const relayArgs = ['--plaintext', '--host', '127.0.0.1', '--port', port, '--db', path.join(dir, 'db.json')];
    let relay = startMain(relayArgs);
    t.teardown(() => killHard(relay.child).catch(() => {}));
    await relay.listening;
    const receiver = await clientFor(t, { host: '127.0.0.1', port: Number(port) }, 34, { identity: false, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
    const listener = await receiver.listen(9);
    const child = start(process.execPath, ['--import', 'tsx', CHILD, port, receiver.virtualIp, '9', String(LAST), String(BUSY_MS), mode]);
    t.teardown(() => void child.child.kill());
    if (mode === 'reconnect') {
      await child.waitFor(/^connected$/m, 30_000);
      // The relay dies and comes back on its port and store: both clients connect again.
      await killHard(relay.child);
      await relay.exited;
      relay = startMain(relayArgs);
      await relay.listening;
    }
    await child.waitFor(/^ready$/m, 30_000);
    const conn = await listener.accept();
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
}

t.test('over a WebSocket, close() fails a connect still pending with ERR_CLIENT_CLOSED, not as a lost relay', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const target = await clientFor(t, relay, 35, { identity: false });
  // A listener that never decides: the connect stays pending until the client closes.
  await target.listen(9, { accept: () => new Promise<boolean>(() => {}) });
  const overWs = await connect({ url: relay.websocket!.url, localAddress: '127.0.0.36', identity: false });
  const pending = overWs.connect({ address: target.virtualIp, port: 9 });
  pending.catch(() => {});
  await new Promise((resolve) => setTimeout(resolve, 100));
  await overWs.close();
  await t.rejects(pending, { code: 'ERR_CLIENT_CLOSED' }, 'the connect fails because this client closed, not as a lost relay');
  t.equal(overWs.state, 'closed');
});
