/**
 * A relay restart under running tunnels: both clients reconnect with their virtual IPs, expose
 * listens again, and new TCP connections go through (docs/TUNNELS.md).
 */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { connect } from '../../actors/client/index.ts';
import type { Client } from '../../actors/client/index.ts';
import { startRelay } from '../../actors/relay/index.ts';
import type { Relay } from '../../actors/relay/index.ts';
import { expose, forward } from '../../tunnel/index.ts';
import { openMemoryAddressStore } from '../../storage/index.ts';
import { portOf, tcpServer } from './fixtures.ts';

const RECONNECT = { initialDelayMs: 20, maxDelayMs: 200 };

async function echoOnce(port: number, message: string): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.end(message);
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Resolves when the client is connected again after having lost the relay. */
function reconnected(client: Client): Promise<void> {
  return new Promise((resolve) => {
    let lost = false;
    const sub = client.actor.subscribe((snapshot) => {
      if (snapshot.value !== 'connected') lost = true;
      else if (lost) {
        sub.unsubscribe();
        resolve();
      }
    });
  });
}

t.test('tunnels carry new connections again after the relay restarts', async (t) => {
  const target = await tcpServer(t, (socket) => {
    socket.on('error', () => {});
    socket.pipe(socket); // echo, ends when the client ends
  });
  const store = await openMemoryAddressStore({ subnet: '10.0.0.0/16' });
  t.teardown(() => store.close());
  let relay: Relay = await startRelay({ store, host: '127.0.0.1', port: 0 });
  const port = relay.port;
  t.teardown(() => relay.close());
  const serving = await connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2', reconnect: RECONNECT });
  const using = await connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3', reconnect: RECONNECT });
  t.teardown(() => Promise.all([serving.close(), using.close()]));
  const servingIp = serving.virtualIp;
  const exposed = await expose({ client: serving, port: 80, target: { host: '127.0.0.1', port: portOf(target) } });
  const forwarded = await forward({ client: using, localPort: 0, remote: { address: servingIp, port: 80 } });
  t.teardown(() => Promise.all([exposed.close(), forwarded.close()]));
  t.equal(await echoOnce(forwarded.port, 'before'), 'before');

  const back = Promise.all([reconnected(serving), reconnected(using)]);
  await relay.close();
  relay = await startRelay({ store, host: '127.0.0.1', port });
  const rebound = new Promise<void>((resolve) => {
    relay.bus.on('port.bound', (e) => {
      if (e.port === 80 && e.virtualIp === servingIp) resolve();
    });
  });
  await back;
  await rebound;
  t.equal(serving.virtualIp, servingIp, 'the same virtual IP after reconnecting');
  t.equal(await echoOnce(forwarded.port, 'after'), 'after', 'a new connection goes through the restarted relay');
  t.equal(exposed.error, undefined, 'expose kept running');
  t.equal(forwarded.error, undefined, 'forward kept running');
});
