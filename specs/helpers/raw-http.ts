/**
 * A raw HTTP exchange over a plain TCP socket for specs: writes the request bytes as given (so a
 * request no HTTP client library would send can be sent), reads the response's head, and says
 * when the server ends or closes the connection. The socket is left open on the client's side
 * until the caller destroys it; every wait fails after its limit naming what it waited for.
 */
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { within } from './wait.ts';

export interface RawHttpExchange {
  socket: net.Socket | tls.TLSSocket;
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

/**
 * Connects from `localAddress` to `host:port` and writes `request` once connected. With
 * `allowHalfOpen` the client's side stays open when the server ends its own, as a peer that
 * never closes would keep it. With `tls` the request goes over TLS (any certificate: a spec's own).
 */
export async function rawHttp(
  host: string,
  port: number,
  request: string,
  localAddress: string,
  options: { timeoutMs?: number; allowHalfOpen?: boolean; tls?: boolean } = {},
): Promise<RawHttpExchange> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const allowHalfOpen = options.allowHalfOpen ?? false;
  const socket = options.tls
    ? tls.connect({ host, port, localAddress, allowHalfOpen, rejectUnauthorized: false } as tls.ConnectionOptions)
    : net.connect({ host, port, localAddress, allowHalfOpen });
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
  await within(`a connection to ${host}:${port}`, once(socket, options.tls ? 'secureConnect' : 'connect'), timeoutMs);
  socket.write(request);
  const limitedHead = within(`the response to ${JSON.stringify(request.split('\r\n')[0])}`, head, timeoutMs);
  limitedHead.catch(() => {});
  const status = limitedHead.then((text) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? NaN));
  status.catch(() => {});
  return { socket, head: limitedHead, status, ended };
}
