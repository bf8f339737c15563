/** Tunnel handles: close(), AbortSignal, the client going away, argument checks. */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { expose, forward, TunnelError } from '../../tunnel/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { closeOf, portOf, tcpServer, tunnelTo } from './fixtures.ts';

t.test('close() resets live connections, stops listening and keeps the totals', async (t) => {
  const targets: net.Socket[] = [];
  const arrived: Array<() => void> = [];
  const target = await tcpServer(t, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => (targets.push(socket), arrived.shift()?.()));
  });
  const { forwarded, exposed, forwardLog } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) });
  const client = net.connect({ host: '127.0.0.1', port: forwarded.port, allowHalfOpen: true });
  const clientClosed = closeOf(client);
  client.write('ping');
  if (targets.length === 0) await new Promise<void>((resolve) => arrived.push(resolve));
  t.equal(forwarded.activeConnections, 1);
  t.equal(exposed.activeConnections, 1);
  const targetClosed = closeOf(targets[0]);
  await forwarded.close();
  t.equal(await clientClosed, true, 'the TCP client was reset');
  await targetClosed;
  t.pass('the target connection closed too');
  t.match(forwarded.stats(), { active: 0, total: 1, tcpToVirtualBytes: 4 });
  t.match(await forwardLog.next('tunnel closed'), { total: 1, tcpToVirtualBytes: 4 });
  await forwarded.closed;
  // The port is released: connecting now is refused by the OS.
  const again = net.connect({ host: '127.0.0.1', port: forwarded.port });
  const [error] = (await once(again, 'error')) as [NodeJS.ErrnoException];
  t.equal(error.code, 'ECONNREFUSED');
});

t.test('an AbortSignal closes both tunnels; a closed client stops them with its error', async (t) => {
  const target = await tcpServer(t, () => {});
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  const using = await clientFor(t, relay, 3);
  const stop = new AbortController();
  const exposed = await expose({ client: serving, port: 80, target: { host: '127.0.0.1', port: portOf(target) }, signal: stop.signal });
  const forwarded = await forward({ client: using, localPort: 0, remote: { address: serving.virtualIp, port: 80 }, signal: stop.signal });
  stop.abort();
  await Promise.all([exposed.closed, forwarded.closed]);
  t.equal(exposed.error, undefined, 'a requested stop is not an error');
  t.equal(forwarded.error, undefined);

  const forwarded2 = await forward({ client: using, localPort: 0, remote: { address: serving.virtualIp, port: 80 } });
  await using.close();
  await forwarded2.closed;
  t.match(forwarded2.error, { code: 'ERR_CLIENT_CLOSED' });
});

t.test('bad arguments throw ERR_INVALID_ARGUMENT; a taken port ERR_LISTEN_FAILED', async (t) => {
  const relay = await relayFor(t);
  const client = await clientFor(t, relay, 2);
  const target = { host: '127.0.0.1', port: 1 };
  await t.rejects(expose({ client, port: 0, target }), { code: 'ERR_INVALID_ARGUMENT', constructor: TunnelError });
  await t.rejects(forward({ client, localPort: 0, remote: { address: 'example.com', port: 80 } }), { code: 'ERR_INVALID_ARGUMENT' });
  const taken = await tcpServer(t, () => {});
  await t.rejects(forward({ client, localPort: portOf(taken), remote: { address: '10.0.0.9', port: 80 } }), {
    code: 'ERR_LISTEN_FAILED',
    message: /EADDRINUSE/,
  });
});

t.test('expose shutdown(): the virtual port is unbound at once, the open connection finishes, then the tunnel closes', async (t) => {
  const target = await tcpServer(t, (socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  const { exposed, forwarded, using, serving, exposeLog } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) });
  const client = net.connect({ host: '127.0.0.1', port: forwarded.port, allowHalfOpen: true });
  client.on('error', () => {});
  let echoed = '';
  client.setEncoding('utf8').on('data', (chunk: string) => (echoed += chunk));
  const ended = once(client, 'end');
  client.write('ping');
  await exposeLog.next('connection opened');
  const shutdown = exposed.shutdown(60_000);
  // A new virtual connection is refused: nothing listens there any more.
  await t.rejects(using.connect({ address: serving.virtualIp, port: 80 }), { code: 'ERR_NOT_LISTENING' });
  client.write('more');
  client.end();
  await ended;
  t.equal(echoed, 'pingmore', 'the open connection carried its bytes both ways to its end');
  // Well inside the 60 s grace: the tunnel closes as soon as its last connection is done.
  await shutdown;
  await exposed.closed;
  t.match(exposed.stats(), { active: 0, total: 1, tcpToVirtualBytes: 8, virtualToTcpBytes: 8 });
  t.ok((await exposeLog.next('connection closed')).reason === undefined, 'closed cleanly, not reset');
});
