/**
 * forward() with a client still to come: the port is bound first (a clash fails before the
 * client is asked for), a TCP connection made meanwhile waits for it, and a client that never
 * comes closes the tunnel with its error.
 */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import type { Client } from '../../actors/client/index.ts';
import { expose, forward } from '../../tunnel/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { collect, portOf, tcpServer } from './fixtures.ts';

t.test('a taken port fails before the client is asked for', async (t) => {
  const taken = await tcpServer(t, () => {});
  let asked = false;
  await t.rejects(
    forward({
      client: () => {
        asked = true;
        return new Promise<Client>(() => {});
      },
      localPort: portOf(taken),
      remote: { address: '10.0.0.9', port: 80 },
    }),
    { code: 'ERR_LISTEN_FAILED', message: /^cannot listen: EADDRINUSE: address already in use 127\.0\.0\.1:\d+$/ },
  );
  t.equal(asked, false, 'no relay dialled for a tunnel that cannot listen');
});

t.test('a TCP connection made before the client is connected waits for it, bytes intact', async (t) => {
  const echo = await tcpServer(t, (socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  const exposed = await expose({ client: serving, port: 80, target: { host: '127.0.0.1', port: portOf(echo) } });
  t.teardown(() => exposed.close());
  let provide: (client: Client) => void = () => {};
  const later = new Promise<Client>((resolve) => (provide = resolve));
  const forwarded = await forward({ client: later, localPort: 0, remote: { address: serving.virtualIp, port: 80 } });
  t.teardown(() => forwarded.close());

  const early = net.connect({ host: '127.0.0.1', port: forwarded.port, allowHalfOpen: true });
  await once(early, 'connect');
  early.end('sent before the relay');
  const answer = collect(early);
  provide(await clientFor(t, relay, 3));
  t.equal((await answer).toString(), 'sent before the relay');
  t.match(forwarded.stats(), { total: 1, refused: 0 });
});

t.test('a client that fails to come closes the tunnel with its error', async (t) => {
  const forwarded = await forward({
    client: Promise.reject(Object.assign(new Error('no relay'), { code: 'ERR_RELAY_UNREACHABLE' })),
    localPort: 0,
    remote: { address: '10.0.0.9', port: 80 },
  });
  await forwarded.closed;
  t.match(forwarded.error, { message: 'no relay' });
});
