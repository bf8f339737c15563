/** Half-close and resets carried across the tunnel, with a raw TCP protocol (not HTTP). */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { pseudoRandom, readAll, sha256 } from '../client/fixtures.ts';
import { MIB, closeOf, collect, portOf, tcpServer, tunnelTo } from './fixtures.ts';

const UPLOAD_BYTES = 2 * MIB;

/** A TCP client with allowHalfOpen, connected to the forward side. */
async function dial(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

t.test('echo after end: the server reads to EOF, then answers on the half-open connection', async (t) => {
  // The protocol: read everything until the client's FIN, then send back a digest line and the
  // bytes reversed, then end. It can only answer if the FIN arrived as a half-close.
  const target = await tcpServer(t, (socket) => {
    void collect(socket).then((got) => {
      socket.write(`${sha256(got)}\n`);
      socket.end(Buffer.from(got).reverse());
    });
  });
  const { forwarded, exposeLog, forwardLog } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) });
  const upload = pseudoRandom(5, UPLOAD_BYTES);
  const socket = await dial(forwarded.port);
  const answer = collect(socket);
  socket.end(upload);
  const got = await answer;
  const newline = got.indexOf(10);
  t.equal(got.subarray(0, newline).toString(), sha256(upload), 'the server saw every byte, then EOF');
  t.equal(sha256(got.subarray(newline + 1)), sha256(Buffer.from(upload).reverse()), 'and its answer arrived after our end');
  await once(socket, 'close');
  const [forwardClosed, exposeClosed] = await Promise.all([forwardLog.next('connection closed'), exposeLog.next('connection closed')]);
  t.match(forwardClosed, { tcpToVirtualBytes: UPLOAD_BYTES, virtualToTcpBytes: got.length }, 'bytes each way, no reset');
  t.match(exposeClosed, { tcpToVirtualBytes: got.length, virtualToTcpBytes: UPLOAD_BYTES });
  t.notOk('reason' in forwardClosed, 'a clean finish has no reason');
});

t.test('the server half-closes first; the client keeps sending and then ends', async (t) => {
  // A greeting protocol: the server sends a banner and ends at once, then reads the client's
  // whole message and closes. The client sees EOF and may still send.
  let serverGot: Promise<Buffer> | undefined;
  const target = await tcpServer(t, (socket) => {
    socket.end('banner\n');
    serverGot = collect(socket);
  });
  const { forwarded } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) });
  const socket = await dial(forwarded.port);
  const banner = await collect(socket);
  t.equal(Buffer.from(banner).toString(), 'banner\n', 'EOF reached the client after the banner');
  const message = pseudoRandom(6, 300 * 1024);
  socket.end(message);
  await once(socket, 'close');
  t.equal(sha256(await (serverGot as Promise<Buffer>)), sha256(message), 'bytes sent after EOF still arrived');
});

t.test('a reset on the target side destroys the client side promptly, and the reverse', async (t) => {
  const targetSockets: net.Socket[] = [];
  const arrived: Array<() => void> = [];
  // A target socket counts once its first bytes came through, so the whole path is up.
  const target = await tcpServer(t, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      targetSockets.push(socket);
      arrived.shift()?.();
    });
  });
  const { forwarded, forwardLog, exposeLog } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) });

  // Target resets mid-conversation: the forward-side client's socket closes without an end.
  const first = await dial(forwarded.port);
  const firstClosed = closeOf(first);
  let firstEnded = false;
  first.on('end', () => (firstEnded = true));
  first.write('hello');
  if (targetSockets.length < 1) await new Promise<void>((resolve) => arrived.push(resolve));
  const resetLine = forwardLog.next('connection reset');
  targetSockets[0].resetAndDestroy();
  await firstClosed;
  t.notOk(firstEnded, 'the client saw a reset, not an end of data');
  t.match(await resetLine, { reason: /ERR_CLOSED_BY_PEER/ }, 'forward logged why');
  t.match(await exposeLog.next('connection reset'), { reason: /ECONNRESET/ }, 'expose logged the target reset');

  // Client resets: the target's socket closes.
  const second = await dial(forwarded.port);
  second.write('hello');
  if (targetSockets.length < 2) await new Promise<void>((resolve) => arrived.push(resolve));
  const targetClosed = closeOf(targetSockets[1]);
  const exposeReset = exposeLog.next('connection reset');
  second.resetAndDestroy();
  await targetClosed;
  t.pass('the target socket closed after the client reset');
  t.match(await exposeReset, { reason: /ERR_CLOSED_BY_PEER/ });
  t.equal(forwarded.activeConnections, 0);
});
