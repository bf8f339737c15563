/**
 * forward(): a real local TCP port whose every connection is carried to a virtual address.
 */
import net from 'node:net';
import type { Client } from '../actors/client/index.ts';
import { describeErrorAt } from '../actors/describe-error.ts';
import { TunnelError } from './errors.ts';
import { clientOf, forwardSetup, type ForwardCommonOptions } from './forward-options.ts';
import { TunnelLedger, describe } from './ledger.ts';
import { TUNNEL_TCP_HIGH_WATER_MARK_BYTES } from './splice.ts';
import { closeOnce } from './close-once.ts';
import { closeWhen, listenerHandle, type TunnelHandle } from './shared.ts';

/** Options of {@link forward}: those it shares with forwardUdp(), and the TCP keepalive. */
export interface ForwardOptions extends ForwardCommonOptions {
  /**
   * Zero-byte keepalive interval per connection, so quiet TCP sessions outlive the relay's idle
   * timeout (0 = none). @default DEFAULT_TUNNEL_KEEPALIVE_MS (60 s)
   */
  keepAliveMs?: number;
}

/** A running forward() tunnel; `port` is the real TCP port listened on (the one picked, for localPort 0). */
export interface ForwardTunnel extends TunnelHandle {
  /** The real interface listened on. */
  readonly host: string;
}

/**
 * Listens on `listenHost:localPort` and carries every TCP connection to `remote` over its own
 * virtual connection. The TCP socket is paused until the virtual connection is open; when the
 * target is offline, not listening or refuses, the TCP connection is reset at once and the
 * reason logged. Resolves once listening; rejects with ERR_LISTEN_FAILED (e.g. port in use).
 *
 * @example
 * ```ts
 * const tunnel = await forward({ client, localPort: 0, remote: { address: '10.0.0.2', port: 80 } });
 * console.log(`http://127.0.0.1:${tunnel.port}/`);
 * ```
 */
export async function forward(options: ForwardOptions): Promise<ForwardTunnel> {
  const { remote } = options;
  const { listenHost, logger } = forwardSetup(options, 'forward');
  const ledger = new TunnelLedger(logger, { keepAliveMs: options.keepAliveMs });
  // Aborts the virtual connects still in flight when the tunnel closes.
  const stopping = new AbortController();
  // Set once the port is bound (below); connections arrive only after that.
  let clientReady: Promise<Client> = Promise.reject(new TunnelError('ERR_TUNNEL_CLOSED', 'not listening yet'));
  clientReady.catch(() => {});

  // allowHalfOpen: a client's FIN ends only its direction (SocketEnd), the answer still flows.
  // pauseOnConnect: bytes wait in the kernel until the virtual connection can take them.
  // noDelay: a request written in pieces must not wait for the previous piece's ACK (Nagle).
  const server = net.createServer(
    { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, highWaterMark: TUNNEL_TCP_HIGH_WATER_MARK_BYTES },
    (socket) => void open(socket),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) =>
      reject(new TunnelError('ERR_LISTEN_FAILED', `cannot listen: ${describeErrorAt(cause, `${listenHost}:${options.localPort}`)}`, { cause })),
    );
    server.listen({ port: options.localPort, host: listenHost }, resolve);
  });
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  // After listening, a server error (e.g. EMFILE on accept) is logged; the tunnel keeps serving.
  server.on('error', (cause) => logger.error({ err: cause }, 'TCP server error'));
  const { port } = server.address() as net.AddressInfo;
  clientReady = clientOf(options.client);

  const open = async (socket: net.Socket): Promise<void> => {
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    // A reset while the virtual connection opens must neither crash nor leave it half-made.
    const attempt = AbortSignal.any([stopping.signal, closedSignal(socket)]);
    socket.on('error', () => {});
    try {
      const client = await whenAborted(clientReady, attempt);
      const connection = await client.connect({ address: remote.address, port: remote.port, signal: attempt });
      ledger.carry(socket, connection, { from, to: `${remote.address}:${remote.port}` });
    } catch (cause) {
      ledger.refuse({ from }, cause);
      // A reset, not a FIN: the TCP client must not mistake a refusal for an empty answer.
      if (!socket.destroyed) socket.resetAndDestroy();
    }
  };

  let error: Error | undefined;
  const closer = closeOnce(async () => {
    stopping.abort(new TunnelError('ERR_TUNNEL_CLOSED', 'the tunnel was closed'));
    if (server.listening) server.close();
    await ledger.destroyAll();
    // 'close' comes once the last TCP connection is gone (a shutdown may have closed it already).
    await serverClosed;
    unhook();
    logger.info({ ...ledger.stats(), ...(error ? { reason: describe(error) } : {}) }, 'tunnel closed');
  });
  const { close, closed } = closer;
  // Stop conditions: the signal at once; the client's end once it is connected.
  let unhookClient = (): void => {};
  const signalOnAbort = (): void => void close();
  options.signal?.addEventListener('abort', signalOnAbort, { once: true });
  // Aborted while the port was being bound: the listener above will never fire.
  if (options.signal?.aborted) void close();
  const unhook = (): void => {
    options.signal?.removeEventListener('abort', signalOnAbort);
    unhookClient();
  };
  clientReady.then(
    (client) => {
      if (!closer.isClosing) unhookClient = closeWhen(client, undefined, close, (lost) => (error ??= lost));
    },
    (cause: unknown) => {
      error ??= cause instanceof Error ? cause : new Error(String(cause));
      void close();
    },
  );
  logger.info({ listen: `${listenHost}:${port}` }, 'tunnel listening');

  return listenerHandle(
    { host: listenHost, port, server, ledger, stopping, stopReason: 'the tunnel is shutting down', close, closed, error: () => error },
    {},
  );
}

/** `promise`, or a rejection with the signal's reason once it aborts. */
function whenAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const signalOnAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', signalOnAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', signalOnAbort));
  });
}

/** A signal that aborts when `socket` closes. */
function closedSignal(socket: net.Socket): AbortSignal {
  const controller = new AbortController();
  socket.once('close', () => controller.abort(new TunnelError('ERR_TUNNEL_CLOSED', 'the TCP connection closed while opening')));
  return controller.signal;
}
