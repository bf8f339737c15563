/**
 * A client that writes its last bytes and closes in one turn, while bytes from the relay wait
 * unread in its socket (it was busy): `conn.send(last); client.close()`. Driven by
 * close-flush.spec.ts: SIGUSR2 starts it, stdout says how far it got.
 *
 *   node --import tsx specs/client/close-flush.child.ts RELAY_PORT VIRTUAL_IP PORT BYTES BUSY_MS
 */
import { connect } from '../../actors/client/index.ts';
import { pseudoRandom } from './fixtures.ts';

const [relayPort, address, port, bytes, busyMs] = process.argv.slice(2);
const client = await connect({ host: '127.0.0.1', port: Number(relayPort), localAddress: '127.0.0.33', identity: false });
const conn = await client.connect({ address, port: Number(port) });
process.stdout.write('ready\n');
process.once('SIGUSR2', () => {
  // Busy, as a process is: what the relay sends meanwhile waits unread in the socket.
  const until = Date.now() + Number(busyMs);
  while (Date.now() < until);
  void conn.send(pseudoRandom(33, Number(bytes)));
  void client.close().then(() => {
    process.stdout.write('closed\n');
    process.exit(0);
  });
});
