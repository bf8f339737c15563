/**
 * A script that exits the moment its last write returns, as short scripts do:
 * `await conn.send(…); await conn.end(); process.exit(0)`, all in one turn.
 *
 *   node --import tsx specs/client/exit-after-end.child.ts RELAY_PORT VIRTUAL_IP PORT plain|e2e
 */
import { connect, generateIdentity } from '../../actors/client/index.ts';

const [relayPort, address, port, mode] = process.argv.slice(2);
const client = await connect({
  host: '127.0.0.1',
  port: Number(relayPort),
  localAddress: '127.0.0.8',
  ...(mode === 'e2e' ? { identity: generateIdentity(), e2e: true } : { identity: false }),
});
const conn = await client.connect({ address, port: Number(port) });
await conn.send('last words');
await conn.end();
process.exit(0);
