/**
 * Joins one real TCP socket to one virtual connection and copies bytes both ways. Both
 * tunnels (expose and forward) use it, so half-close, backpressure and teardown behave the
 * same in either direction.
 */
import type { Socket } from 'node:net';
import { ClosedByPeerError } from '../actors/client/index.ts';
import type { VirtualConnection } from '../actors/client/index.ts';
import { TunnelError } from './errors.ts';

/** Bytes one spliced connection moved, and why it ended. */
export interface SpliceResult {
  /** Bytes read from the TCP socket and sent into the virtual connection. */
  tcpToVirtualBytes: number;
  /** Bytes read from the virtual connection and written to the TCP socket. */
  virtualToTcpBytes: number;
  /** The first error on either side; undefined when both directions ended cleanly. */
  error: Error | undefined;
}

/** A running splice: live byte counts, a way to tear it down, and its outcome. */
export interface Splice {
  readonly tcpToVirtualBytes: number;
  readonly virtualToTcpBytes: number;
  /** Destroys both sides at once (a reset, not a half-close). @default reason ERR_TUNNEL_CLOSED */
  destroy(reason?: Error): void;
  /** Settles when both sides are closed; never rejects. */
  readonly done: Promise<SpliceResult>;
}

/**
 * Copies `tcp` ⇄ `connection` until both directions end.
 *
 * - Bytes flow through `pipe()` on both Duplexes, so a full TCP send buffer stops reads from
 *   the connection, which withholds window credit from the peer (docs/PROTOCOL.md §7); a
 *   connection without window credit stops reads from the TCP socket. Nothing buffers beyond
 *   the streams' high-water marks plus one window.
 * - TCP FIN ends the connection's writable side (SocketEnd), and the peer's SocketEnd ends the
 *   TCP socket's writable side: `tcp` must be created with `allowHalfOpen: true`.
 * - An error or abrupt close on either side destroys the other side at once.
 */
export interface SpliceOptions {
  /**
   * Interval of zero-byte keepalives on the virtual connection (0 = none): a TCP connection may
   * sit quiet for hours (SSH, a game lobby), which the relay's idle timeout would otherwise end.
   * @default DEFAULT_TUNNEL_KEEPALIVE_MS (60 s)
   */
  keepAliveMs?: number;
}

/**
 * Write buffering of the tunnels' TCP sockets. Node's 16 KiB makes every 64 KiB chunk a "wait for
 * drain", so pipe() paused after each chunk and the two halves of a frame that spanned two reads
 * went out as two writes; with room for a few chunks they leave corked, in one writev.
 */
export const TUNNEL_TCP_HIGH_WATER_MARK_BYTES = 256 * 1024;

/** Well under any sensible relay idle timeout (default 10 minutes), and one 13-byte frame a minute. */
export const DEFAULT_TUNNEL_KEEPALIVE_MS = 60_000;

export function splice(tcp: Socket, connection: VirtualConnection, options: SpliceOptions = {}): Splice {
  const duplex = connection.duplex();
  let tcpToVirtualBytes = 0;
  let virtualToTcpBytes = 0;
  let error: Error | undefined;
  let peerEnded = false;
  let tcpClosed = false;
  let virtualClosed = false;
  let settle: (result: SpliceResult) => void = () => {};
  const done = new Promise<SpliceResult>((resolve) => (settle = resolve));

  // RST, not FIN: a half-open TCP peer would take a FIN for the clean end of the data.
  const reset = (): void => void tcp.resetAndDestroy();
  const fail = (cause: Error): void => {
    error ??= cause;
    reset();
    // With the cause, so the peer hears an abort (SocketClosed Error), not a clean close.
    duplex.destroy(cause);
  };
  const keepAliveMs = options.keepAliveMs ?? DEFAULT_TUNNEL_KEEPALIVE_MS;
  const keepAlive = keepAliveMs > 0 ? setInterval(() => connection.keepAlive(), keepAliveMs).unref() : undefined;
  const maybeSettle = (): void => {
    if (tcpClosed && virtualClosed) {
      clearInterval(keepAlive);
      settle({ tcpToVirtualBytes, virtualToTcpBytes, error });
    }
  };

  // Counted from the same 'data' events pipe() consumes, so the counts are what was handed over.
  // The chunks the connection hands over in one tick (a data frame that spanned two TCP reads is
  // two chunks) leave in one writev: the TCP socket is corked from the first until the next tick.
  // Registered before pipe(), so the cork is on before pipe's write of the first chunk.
  let corked = false;
  const uncork = (): void => {
    corked = false;
    tcp.uncork();
  };
  duplex.on('data', (chunk: Buffer) => {
    virtualToTcpBytes += chunk.length;
    if (!corked && !tcp.destroyed) {
      corked = true;
      tcp.cork();
      process.nextTick(uncork);
    }
  });
  tcp.pipe(duplex);
  duplex.pipe(tcp);
  tcp.on('data', (chunk: Buffer) => (tcpToVirtualBytes += chunk.length));

  tcp.on('error', tcpOnError);
  duplex.on('error', duplexOnError);
  tcp.on('close', tcpOnClose);
  connection.on('end', connectionOnEnd);
  connection.on('close', connectionOnClose);

  function tcpOnError(cause: Error): void {
    fail(cause);
  }
  function duplexOnError(cause: Error): void {
    fail(cause);
  }
  function tcpOnClose(): void {
    tcpClosed = true;
    // A socket that closed before both of its directions finished was reset or destroyed: the
    // peer must not wait for bytes that will never come.
    if (!(tcp.readableEnded && tcp.writableFinished)) {
      duplex.destroy(new TunnelError('ERR_TUNNEL_CLOSED', 'the TCP connection closed before both of its directions ended'));
    }
    maybeSettle();
  }
  function connectionOnEnd(): void {
    peerEnded = true;
  }
  function connectionOnClose(cause: Error | undefined): void {
    virtualClosed = true;
    if (cause) {
      fail(cause);
    } else if (!(peerEnded && duplex.writableEnded)) {
      // Closed without both SocketEnds (docs/PROTOCOL.md §8): the peer or we called close(),
      // which is a reset. A clean finish leaves the TCP socket to flush what it still holds.
      error ??= new ClosedByPeerError(`${connection.remoteAddress}:${connection.remotePort} closed the connection before ending it`);
      reset();
    }
    maybeSettle();
  }

  // Either side may have died while the other was being set up; its 'close' has been emitted.
  if (connection.closed) {
    virtualClosed = true;
    error ??= connection.error ?? new ClosedByPeerError(`${connection.remoteAddress}:${connection.remotePort} closed the connection at once`);
    reset();
    maybeSettle();
  }
  if (tcp.destroyed) {
    tcpClosed = true;
    error ??= new TunnelError('ERR_TUNNEL_CLOSED', 'the TCP connection closed before the tunnel was set up');
    duplex.destroy();
    maybeSettle();
  }

  return {
    get tcpToVirtualBytes() {
      return tcpToVirtualBytes;
    },
    get virtualToTcpBytes() {
      return virtualToTcpBytes;
    },
    destroy(reason = new TunnelError('ERR_TUNNEL_CLOSED', 'the tunnel was closed')) {
      error ??= reason;
      reset();
      duplex.destroy(reason);
      if (!connection.closed) connection.destroy();
    },
    done,
  };
}
