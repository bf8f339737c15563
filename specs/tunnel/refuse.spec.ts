/** Targets that refuse: the forwarded TCP connection is reset at once and the reason logged. */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { expose, forward } from '../../tunnel/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { VIRTUAL_PORT, closeOf, collect, portOf, recordingLogger, tcpServer, tunnelTo } from './fixtures.ts';

/** Connects to the forward side, sends a request and half-closes, and resolves with what came back before close. */
async function attempt(port: number): Promise<{ received: number; ended: boolean; hadError: boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const closed = closeOf(socket);
  let received = 0;
  let ended = false;
  socket.on('data', (c: Buffer) => (received += c.length));
  socket.on('end', () => (ended = true));
  await once(socket, 'connect');
  socket.end('GET / HTTP/1.0\r\n\r\n');
  const hadError = await closed;
  return { received, ended, hadError };
}

t.test('a virtual IP not on the allow-list is denied in the handshake', async (t) => {
  let targetConnections = 0;
  const target = await tcpServer(t, () => targetConnections++);
  const { forwarded, forwardLog, exposeLog } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) }, { allow: ['10.0.9.9'] });
  const r = await attempt(forwarded.port);
  t.match(r, { received: 0, ended: false, hadError: true }, 'reset, no bytes, no clean end');
  t.match(await forwardLog.next('connection refused'), { reason: /^ERR_CONNECTION_REFUSED: / });
  t.match(await exposeLog.next('connection refused'), { from: /^10\.0\.\d+\.\d+:\d+$/, reason: /^ERR_NOT_ALLOWED: .*not on the allow-list/ });
  t.equal(targetConnections, 0, 'the target was never dialled');
  t.match(forwarded.stats(), { total: 0, refused: 1, active: 0 });
});

t.test('the allow-list lets listed addresses through', async (t) => {
  let request: Promise<Buffer> | undefined;
  const target = await tcpServer(t, (socket) => {
    request = collect(socket);
    socket.end('welcome');
  });
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  const using = await clientFor(t, relay, 3);
  const exposed = await expose({ client: serving, port: VIRTUAL_PORT, target: { host: '127.0.0.1', port: portOf(target) }, allow: [using.virtualIp] });
  t.teardown(() => exposed.close());
  const forwarded = await forward({ client: using, localPort: 0, remote: { address: serving.virtualIp, port: VIRTUAL_PORT } });
  t.teardown(() => forwarded.close());
  const r = await attempt(forwarded.port);
  t.match(r, { received: 7, ended: true, hadError: false });
  // The forward side can be done before the request has reached the target (with end-to-end
  // encryption, by a few turns): the target's side must finish too before the tunnels close.
  t.equal((await request!).toString(), 'GET / HTTP/1.0\r\n\r\n', 'the target got the request and its end');
});

t.test('nothing listening at the virtual port, and an offline host', async (t) => {
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  const using = await clientFor(t, relay, 3);
  const log = recordingLogger();
  for (const [remote, code] of [
    [{ address: serving.virtualIp, port: 81 }, /^ERR_NOT_LISTENING: /],
    [{ address: '10.0.250.1', port: 80 }, /^ERR_TARGET_OFFLINE: /],
  ] as const) {
    const forwarded = await forward({ client: using, localPort: 0, remote, logger: log.logger });
    t.teardown(() => forwarded.close());
    const r = await attempt(forwarded.port);
    t.match(r, { received: 0, ended: false, hadError: true }, `${remote.address}:${remote.port}: reset at once`);
    t.match(await log.next('connection refused'), { remote: `${remote.address}:${remote.port}`, reason: code });
  }
});

t.test('the exposed HOST:PORT itself refuses', async (t) => {
  // A port that was free a moment ago: listen, note it, close.
  const probe = await tcpServer(t, () => {});
  const deadPort = portOf(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const { forwarded, forwardLog, exposeLog, exposed } = await tunnelTo(t, { host: '127.0.0.1', port: deadPort });
  const r = await attempt(forwarded.port);
  t.match(r, { received: 0, ended: false, hadError: true });
  t.match(await exposeLog.next('connection refused'), { reason: /^ERR_TARGET_UNREACHABLE: .*ECONNREFUSED/ });
  t.match(await forwardLog.next('connection refused'), { reason: /^ERR_CONNECTION_REFUSED: / });
  t.match(exposed.stats(), { total: 0, refused: 1 });
});
