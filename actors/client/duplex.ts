/**
 * The Node Duplex view of a virtual connection (Node only: the browser bundle leaves this file
 * out, and a browser's `duplex()` says so).
 */
import { Duplex } from 'node:stream';
import { ClosedByPeerError } from './errors.ts';
import { DUPLEX_READABLE_HIGH_WATER_MARK_BYTES, DUPLEX_WRITABLE_HIGH_WATER_MARK_BYTES } from './connection.ts';
import type { VirtualConnection } from './connection.ts';

/**
 * A Node Duplex over a connection. Reading pulls from the connection only when the stream's
 * buffer has room, so a slow consumer withholds window credit and the sender waits;
 * writing resolves as send() does. Ending the writable side half-closes (SocketEnd) and the
 * readable side still runs to the peer's end. Destroying the stream closes the connection.
 *
 * @example
 * ```ts
 * import { pipeline } from 'node:stream/promises';
 * await pipeline(process.stdin, toDuplex(conn), process.stdout);
 * ```
 */
export function toDuplex(connection: VirtualConnection): Duplex {
  let reading = false;
  const duplex: Duplex = new Duplex({
    // Node's 16 KiB defaults are a quarter frame: every 64 KiB chunk would stop the pipe feeding it.
    writableHighWaterMark: DUPLEX_WRITABLE_HIGH_WATER_MARK_BYTES,
    readableHighWaterMark: DUPLEX_READABLE_HIGH_WATER_MARK_BYTES,
    read() {
      if (reading) return;
      // What has arrived goes in at once, as far as the stream's buffer takes it.
      for (let chunk = connection.takeChunk(); chunk !== undefined; chunk = connection.takeChunk()) {
        if (!duplex.push(chunk)) return;
      }
      reading = true;
      connection.read().then(
        (chunk) => {
          reading = false;
          if (!duplex.push(chunk) || chunk === null) return;
          // The rest of what arrived with it goes in the same tick (a frame that spanned two TCP
          // reads is two chunks), so a consumer can write them out together.
          for (let next = connection.takeChunk(); next !== undefined; next = connection.takeChunk()) {
            if (!duplex.push(next)) return;
          }
        },
        (error: unknown) => {
          reading = false;
          duplex.destroy(error as Error);
        },
      );
    },
    write(chunk: Uint8Array, _encoding, callback) {
      connection.send(chunk).then(() => callback(), callback);
    },
    writev(chunks, callback) {
      // Sends run in order; the last one settles after all before it.
      let last: Promise<void> = Promise.resolve();
      for (const { chunk } of chunks) {
        last = connection.send(chunk as Uint8Array);
        // A failure fails every later send too; the last one reports it.
        last.catch(() => {});
      }
      last.then(() => callback(), callback);
    },
    final(callback) {
      connection.end().then(() => callback(), callback);
    },
    destroy(error, callback) {
      // An error aborts, so the peer does not take the cut-short data for all of it.
      if (error) connection.destroy();
      else connection.close();
      callback(error);
    },
  });
  // The connection can end while the stream is idle (nothing read or written): the stream must
  // still learn of it, or a pipeline through it would wait forever.
  connection.on('close', (error) => {
    if (duplex.destroyed) return;
    if (error) {
      duplex.destroy(error);
      return;
    }
    // We ended our side (the close may come from our own SocketEnd completing the pair, before
    // final() has called back): a clean finish, and the readable side runs to its end.
    if (duplex.writableEnded) return;
    // Closed before we ended our side: writes can never go through. Let the reader take what
    // arrived first, then fail the stream as a TCP socket fails after the peer's reset.
    const fail = () => {
      if (!duplex.destroyed && !duplex.writableEnded) {
        duplex.destroy(new ClosedByPeerError(`${connection.remoteAddress}:${connection.remotePort} closed the connection`));
      }
    };
    if (duplex.readableEnded) fail();
    else duplex.once('end', fail);
  });
  return duplex;
}
