/**
 * An end-to-end encrypting client in a process of its own, for the spec that checks a native end
 * and a node:crypto end talk alike: it listens, echoes every byte of one connection back, ends,
 * and prints its AEAD backend first.
 *
 *   ALPHANET_AEAD=node node --import tsx specs/client/e2e-native-aead.child.ts RELAY_PORT PORT
 */
import { connect, generateIdentity } from '../../actors/client/index.ts';
import { aeadBackend } from '../../actors/client/e2e/native-aead.ts';

const [relayPort, port] = process.argv.slice(2);
const client = await connect({ host: '127.0.0.1', port: Number(relayPort), localAddress: '127.0.0.9', identity: generateIdentity(), e2e: true });
const socket = await client.listen(Number(port));
process.stdout.write(`backend ${aeadBackend().name} at ${client.virtualIp}\n`);
const conn = await socket.accept();
const closed = new Promise((resolve) => conn.once('close', resolve));
for await (const chunk of conn) await conn.send(chunk);
await conn.end();
// The echo may still wait for the reader's window: leaving before the connection closes would cut it.
await closed;
await client.close();
