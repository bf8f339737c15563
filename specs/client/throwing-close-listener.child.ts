/**
 * A 'close' listener that throws, in a process with an uncaughtException handler: the relay is
 * lost, and the other connection of the same client must still be failed and told.
 *
 *   node --import tsx specs/client/throwing-close-listener.child.ts PROXY_PORT VIRTUAL_IP PORT
 */
import { connect } from '../../actors/client/index.ts';

const [proxyPort, address, port] = process.argv.slice(2);
process.on('uncaughtException', (error) => console.log(`uncaught ${error.message}`));
const client = await connect({ host: '127.0.0.1', port: Number(proxyPort), localAddress: '127.0.0.10', identity: false, reconnect: false });
const first = await client.connect({ address, port: Number(port) });
const second = await client.connect({ address, port: Number(port) });
first.on('close', () => {
  throw new Error('close boom');
});
second.on('close', (error) => console.log(`second closed ${error?.code}`));
console.log('ready');
