/**
 * A raw HTTP exchange over a plain TCP socket for specs: writes the request bytes as given (so a
 * request no HTTP client library would send can be sent), reads the response's head, and says
 * when the server ends or closes the connection. The socket is left open on the client's side
 * until the caller destroys it; every wait fails after its limit naming what it waited for.
 */
import { once } from 'node:events';
import net from 'node:net';
import { within } from './wait.ts';

export interface RawHttpExchange {
  socket: net.Socket;
  /** The status line and headers of the first response, once they have arrived. */
  head: Promise<string>;
  /** The status code of the first response. */
  status: Promise<number>;
  /** Resolves when the server ends its side or the connection closes, whichever comes first. */
  ended: Promise<void>;
}

/** A WebSocket upgrade request for `path` (RFC 6455 §4.1), with extra header lines if given. */
export function upgradeRequest(path: string, extra: string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** Connects from `localAddress` to `host:port` and writes `request` once connected. */
export async function rawHttp(host: string, port: number, request: string, localAddress: string, timeoutMs = 10_000): Promise<RawHttpExchange> {
  const socket = net.connect({ host, port, localAddress });
  socket.on('error', () => {});
  let received = '';
  const head = new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        // Keep reading (and dropping) what follows, so the server's end is seen.
        socket.resume();
        resolve(received.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`the connection closed before a response head; got ${JSON.stringify(received)}`)));
  });
  head.catch(() => {});
  const ended = Promise.race([once(socket, 'end'), once(socket, 'close')]).then(() => {});
  await within(`a connection to ${host}:${port}`, once(socket, 'connect'), timeoutMs);
  socket.write(request);
  const limitedHead = within(`the response to ${JSON.stringify(request.split('\r\n')[0])}`, head, timeoutMs);
  limitedHead.catch(() => {});
  const status = limitedHead.then((text) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? NaN));
  status.catch(() => {});
  return { socket, head: limitedHead, status, ended };
}
