/**
 * A client that writes its last bytes and closes in one turn, while bytes from the relay wait
 * unread in its socket (it was busy): `conn.send(last); client.close()`. Driven by
 * close-flush.spec.ts: SIGUSR2 starts it, stdout says how far it got.
 *
 * With `reconnect`, it first loses its relay and connects again (the spec restarts the relay
 * after `connected`), so the close is that of a client that was reconnected.
 *
 *   node --import tsx specs/client/close-flush.child.ts RELAY_PORT VIRTUAL_IP PORT BYTES BUSY_MS first|reconnect
 */
import { connect, type VirtualConnection } from '../../actors/client/index.ts';
import { pseudoRandom } from './fixtures.ts';

const [relayPort, address, port, bytes, busyMs, mode] = process.argv.slice(2);
const client = await connect({
  host: '127.0.0.1',
  port: Number(relayPort),
  localAddress: '127.0.0.33',
  identity: false,
  ...(mode === 'reconnect' ? { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } } : {}),
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
if (mode === 'reconnect') {
  process.stdout.write('connected\n');
  while (!client.state.startsWith('reconnecting')) await sleep(10);
  while (client.state !== 'connected') await sleep(10);
}
// After a reconnect the peer may still be binding its port again: a refusal is tried again.
let conn: VirtualConnection | undefined;
for (let attempt = 0; conn === undefined; attempt++) {
  try {
    conn = await client.connect({ address, port: Number(port) });
  } catch (error) {
    if (attempt >= 100) throw error;
    await sleep(50);
  }
}
process.stdout.write('ready\n');
process.once('SIGUSR2', () => {
  // Busy, as a process is: what the relay sends meanwhile waits unread in the socket.
  const until = Date.now() + Number(busyMs);
  while (Date.now() < until);
  void conn!.send(pseudoRandom(33, Number(bytes)));
  void client.close().then(() => {
    process.stdout.write('closed\n');
    process.exit(0);
  });
});
