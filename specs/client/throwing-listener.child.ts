/**
 * A 'data' listener that throws, in a process of its own: the error must surface (the process
 * fails with it) and the connection must be aborted, not left open with nothing reading it.
 *
 *   node --import tsx specs/client/throwing-listener.child.ts RELAY_PORT VIRTUAL_IP PORT
 */
import { connect } from '../../actors/client/index.ts';

const [relayPort, address, port] = process.argv.slice(2);
const client = await connect({ host: '127.0.0.1', port: Number(relayPort), localAddress: '127.0.0.9', identity: false });
const conn = await client.connect({ address, port: Number(port) });
conn.on('data', () => {
  throw new Error('listener boom');
});
await conn.send('ready');
