/**
 * Runnable example: a relay in-process on a free port with a memory store, two clients from
 * 127.0.0.2 and 127.0.0.3; one echoes, the other sends a message and prints the echo.
 *
 *   node --import tsx examples/echo.ts
 */
import { connect, openMemoryAddressStore, startRelay } from '../index.ts';

const store = await openMemoryAddressStore({ subnet: '10.0.0.0/16' });
const relay = await startRelay({ store, host: '127.0.0.1', port: 0 });
const server = await connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.2' });
const client = await connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.3' });

const listener = await server.listen(7);
void (async () => {
  for await (const conn of listener) {
    for await (const chunk of conn) await conn.send(chunk);
    await conn.end();
  }
})();

const conn = await client.connect({ address: server.virtualIp, port: 7 });
await conn.send(new TextEncoder().encode(`hello from ${client.virtualIp}`));
await conn.end();
let echo = '';
for await (const chunk of conn) echo += new TextDecoder().decode(chunk, { stream: true });
console.log(`${server.virtualIp} echoed: ${echo}`);

await client.close();
await server.close();
await relay.close();
await store.close();
