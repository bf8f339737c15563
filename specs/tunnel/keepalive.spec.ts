/** A quiet tunnelled TCP connection (an SSH session, a lobby) outlives the relay's idle timeout. */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { portOf, tcpServer, tunnelTo } from './fixtures.ts';

t.test('tunnel keepalives hold a quiet connection open past the relay idle timeout', async (t) => {
  const target = await tcpServer(t, (socket) => {
    socket.on('error', () => {}); // the tunnel resets it at teardown
    socket.pipe(socket); // echo
  });
  const { forwarded, serving, using } = await tunnelTo(
    t,
    { host: '127.0.0.1', port: portOf(target) },
    // A keepalive every 100 ms against a 1.5 s idle timeout. With 50 ms against 300 ms the full
    // suite on a loaded 2-core machine (parallel specs, coverage) reaped the tunnel twice
    // (ECONNRESET on the quiet socket): a 250 ms lull in its timers is within that machine's
    // reach. What is tested is that keepalives hold a connection the timeout would reap.
    { keepAliveMs: 100, relay: { idleTimeoutMs: 1_500 } },
  );
  const socket = net.connect({ host: '127.0.0.1', port: forwarded.port });
  t.teardown(() => socket.destroy());
  // Closing the tunnel at teardown resets this still-open connection: expected, not a failure.
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('ping');
  t.equal(((await once(socket, 'data')) as [Buffer])[0].toString(), 'ping');

  // A control connection with no keepalive: once the relay has reaped it, the timeout has passed.
  const listener = await serving.listen(81);
  const accepted = listener.accept();
  const control = await using.connect({ address: serving.virtualIp, port: 81 });
  await accepted;
  await t.rejects(
    (async () => {
      for await (const _ of control);
    })(),
    { code: 'ERR_CLOSED_BY_RELAY', reason: 'IdleTimeout' },
  );

  socket.write('still there?');
  t.equal(((await once(socket, 'data')) as [Buffer])[0].toString(), 'still there?', 'the quiet tunnel connection still works');
});
