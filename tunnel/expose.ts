/**
 * expose(): serve a real TCP service at a virtual port. Each accepted virtual connection gets
 * its own TCP connection to the target, and the two are spliced together.
 */
import net from 'node:net';
import type { Client, ConnectionRequest, VirtualConnection, VirtualSocket } from '../actors/client/index.ts';
import { silentLogger } from '../actors/logger.ts';
import type { Logger } from '../actors/logger.ts';
import { describeErrorAt } from '../actors/describe-error.ts';
import { TunnelError } from './errors.ts';
import { TunnelLedger, describe } from './ledger.ts';
import { TUNNEL_TCP_HIGH_WATER_MARK_BYTES } from './splice.ts';
import { closeOnce } from './close-once.ts';
import { checkPort, closeWhen, gracefulShutdown, type TunnelHandle } from './shared.ts';

/**
 * Time allowed for the TCP connect to the target. Below the relay's 10 s request timeout
 * (docs/PROTOCOL.md §6), so a target that never answers is reported as a refusal, not a
 * relay timeout.
 */
/**
 * How long a target connection dialled during a handshake waits to be claimed by its accepted
 * virtual connection. Longer than the client's request timeout (15 s), so only an abandoned
 * handshake ever reaches it.
 */
const DIALLED_CLAIM_TIMEOUT_MS = 30_000;

export const DEFAULT_TARGET_CONNECT_TIMEOUT_MS = 5_000;

/** Options of {@link expose}. */
export interface ExposeOptions {
  /** A connected client; the tunnel listens on its virtual host. */
  client: Client;
  /** The virtual port to listen on (1..65535). */
  port: number;
  /** The real TCP service every virtual connection is carried to. */
  target: { host: string; port: number };
  /**
   * Virtual IPs that may connect; everyone else is denied in the handshake
   * (the connector gets ERR_CONNECTION_REFUSED).
   * @default everyone may connect
   */
  allow?: readonly string[];
  /** Time for the TCP connect to the target, in ms. @default DEFAULT_TARGET_CONNECT_TIMEOUT_MS (5 s) */
  targetConnectTimeoutMs?: number;
  /** One info line per connection opened and closed, a warning per refusal. @default a silent logger */
  logger?: Logger;
  /** Aborting closes the tunnel as close() does. @default none */
  signal?: AbortSignal;
  /**
   * Zero-byte keepalive interval per connection, so quiet TCP sessions outlive the relay's idle
   * timeout (0 = none). @default DEFAULT_TUNNEL_KEEPALIVE_MS (60 s)
   */
  keepAliveMs?: number;
}

/** A running expose() tunnel; `port` is the virtual port served. */
export interface ExposeTunnel extends TunnelHandle {
  /** The virtual address served, "virtualIp:port". */
  readonly address: string;
}

/** Connects to the target, or rejects with ERR_TARGET_UNREACHABLE (cause: the socket error). */
function connectTarget(target: { host: string; port: number }, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the target's FIN must only end one direction (docs/TUNNELS.md, half-close).
    const socket = net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      writableHighWaterMark: TUNNEL_TCP_HIGH_WATER_MARK_BYTES,
    } as net.NetConnectOpts);
    const where = `${target.host}:${target.port}`;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TunnelError('ERR_TARGET_UNREACHABLE', `${where} did not accept the TCP connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', socketOnError);
      // Until it is spliced, a reset must not crash the process; splice() sees it as destroyed.
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', socketOnError);
    function socketOnError(error: Error): void {
      clearTimeout(timer);
      reject(new TunnelError('ERR_TARGET_UNREACHABLE', `cannot connect to the target: ${describeErrorAt(error, where)}`, { cause: error }));
    }
  });
}

/**
 * Listens on virtual port `port` of the client's host and carries every accepted connection to
 * `target` over TCP. The target is dialled during the handshake, so a target that refuses
 * makes the connector's connect() fail with ERR_CONNECTION_REFUSED instead of opening a
 * connection that dies at once. Resolves once listening.
 *
 * @example
 * ```ts
 * const tunnel = await expose({ client, port: 80, target: { host: '127.0.0.1', port: 8080 } });
 * // … later
 * await tunnel.close();
 * ```
 */
export async function expose(options: ExposeOptions): Promise<ExposeTunnel> {
  const { client, target } = options;
  checkPort(options.port, 'port');
  checkPort(target.port, 'target.port');
  const timeoutMs = options.targetConnectTimeoutMs ?? DEFAULT_TARGET_CONNECT_TIMEOUT_MS;
  const allow = options.allow ? new Set(options.allow) : undefined;
  const logger = (options.logger ?? silentLogger()).child({ tunnel: 'expose', port: options.port, target: `${target.host}:${target.port}` });
  const ledger = new TunnelLedger(logger, { keepAliveMs: options.keepAliveMs });
  options.signal?.throwIfAborted();
  // TCP sockets dialled in the handshake, waiting for accept() to hand over their connection.
  // Keyed by the connector's address, which is unique among its live connections (§5).
  const dialled = new Map<string, net.Socket>();
  const keyOf = (address: string, port: number): string => `${address}:${port}`;
  let error: Error | undefined;
  let draining = false;

  const decide = async (request: ConnectionRequest): Promise<boolean> => {
    const fields = { from: keyOf(request.remoteAddress, request.remotePort) };
    if (allow && !allow.has(request.remoteAddress)) {
      ledger.refuse(fields, new TunnelError('ERR_NOT_ALLOWED', `${request.remoteAddress} is not on the allow-list`));
      return false;
    }
    try {
      const socket = await connectTarget(target, timeoutMs);
      // Closed while dialling: close() has already swept `dialled`.
      if (closer.isClosing) {
        socket.destroy();
        return false;
      }
      // A handshake can be abandoned after we dialled (the relay connection dropped, the listener
      // is re-binding): a socket nobody claims in time is closed rather than left open.
      dialled.get(fields.from)?.destroy();
      dialled.set(fields.from, socket);
      setTimeout(() => {
        if (dialled.get(fields.from) !== socket) return;
        dialled.delete(fields.from);
        socket.destroy();
        ledger.refuse(fields, new TunnelError('ERR_TARGET_UNREACHABLE', 'the handshake was abandoned after the target was dialled'));
      }, DIALLED_CLAIM_TIMEOUT_MS).unref();
      return true;
    } catch (error) {
      ledger.refuse(fields, error);
      return false;
    }
  };

  const server: VirtualSocket = await client.listen(options.port, { accept: decide });
  const address = `${client.virtualIp}:${server.port}`;
  const closer = closeOnce(async () => {
    server.close();
    for (const socket of dialled.values()) socket.destroy();
    dialled.clear();
    await ledger.destroyAll();
    unhook();
    const stats = ledger.stats();
    logger.info({ ...stats, ...(error ? { reason: describe(error) } : {}) }, 'tunnel closed');
  });
  const { close, closed } = closer;
  const unhook = closeWhen(client, options.signal, close, (lost) => (error ??= lost));

  const serve = async (): Promise<void> => {
    try {
      for await (const connection of server) take(connection);
    } catch (cause) {
      error ??= cause as Error;
    }
    // A shutdown closed the listener on purpose and closes the rest after its grace period.
    if (!draining) await close();
  };
  const take = (connection: VirtualConnection): void => {
    const from = keyOf(connection.remoteAddress, connection.remotePort);
    const socket = dialled.get(from);
    dialled.delete(from);
    if (socket === undefined) {
      // Cannot happen while decide() is the only way in; a connection without a socket is reset.
      connection.close();
      ledger.refuse({ from }, new TunnelError('ERR_TARGET_UNREACHABLE', 'no TCP connection was dialled for it'));
      return;
    }
    ledger.carry(socket, connection, { from, to: `${target.host}:${target.port}` });
  };
  void serve();
  logger.info({ address, allow: options.allow ?? 'everyone' }, 'tunnel listening');

  return {
    address,
    port: server.port,
    get activeConnections() {
      return ledger.active;
    },
    stats: () => ledger.stats(),
    close,
    // Closing the listener unbinds the port (new connects are refused); accepted connections go on.
    shutdown: (graceMs) => {
      draining = true;
      return gracefulShutdown(() => server.close(), () => ledger.idle(), graceMs, close);
    },
    closed,
    get error() {
      return error;
    },
  };
}
