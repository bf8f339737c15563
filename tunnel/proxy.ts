/**
 * proxy(): one local port through which any program reaches any virtual host and port, by
 * SOCKS5 or HTTP CONNECT (docs/TUNNELS.md "Any program through SOCKS"). Each accepted TCP
 * connection says where it wants to go in its handshake; the proxy opens a virtual connection
 * there and splices the two as forward() does.
 */
import net from 'node:net';
import type { Client } from '../actors/client/index.ts';
import { silentLogger } from '../actors/logger.ts';
import type { Logger } from '../actors/logger.ts';
import { parseAllowList } from './allow-list.ts';
import { TunnelError } from './errors.ts';
import { TunnelLedger, describe } from './ledger.ts';
import { REAL_TIMERS, serveRequest, type ProxyRequestContext, type ProxyTimers } from './proxy-request.ts';
import { TUNNEL_TCP_HIGH_WATER_MARK_BYTES } from './splice.ts';
import { closeOnce } from './close-once.ts';
import { checkPort, closeWhen, listenerHandle, type TunnelHandle } from './shared.ts';

export type { ProxyTimers } from './proxy-request.ts';
export { PROXY_REFUSAL_LINGER_MS } from './proxy-request.ts';

/** Interface proxy() listens on unless told otherwise: only programs on this machine can use it. */
export const DEFAULT_PROXY_LISTEN_HOST = '127.0.0.1';
/** The usual SOCKS port (the one browsers and `ssh -D` suggest). */
export const DEFAULT_PROXY_PORT = 1080;
/** Time from accepting a TCP connection to its complete request; a program that sends nothing is closed. */
export const DEFAULT_PROXY_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections allowed in their handshake at once (not yet carrying bytes); more are closed at once. */
export const DEFAULT_PROXY_MAX_HANDSHAKES = 256;

/** Options of {@link proxy}. */
export interface ProxyOptions {
  /** The real interface and TCP port to listen on; port 0 picks a free one (read it from `port`). @default DEFAULT_PROXY_LISTEN_HOST:DEFAULT_PROXY_PORT (127.0.0.1:1080) */
  listen?: { host?: string; port?: number };
  /**
   * Virtual IPv4 addresses and CIDR blocks ("10.0.0.7", "10.0.0.0/16") the proxy may reach;
   * a request for anything else is refused as not allowed. @default every address
   */
  allow?: readonly string[];
  /** One info line per connection opened and closed, a warning per refusal. @default a silent logger */
  logger?: Logger;
  /** Aborting closes the proxy as close() does. @default none */
  signal?: AbortSignal;
  /** Zero-byte keepalive interval per connection (0 = none). @default DEFAULT_TUNNEL_KEEPALIVE_MS (60 s) */
  keepAliveMs?: number;
  /** @default DEFAULT_PROXY_HANDSHAKE_TIMEOUT_MS (10 s) */
  handshakeTimeoutMs?: number;
  /** @default DEFAULT_PROXY_MAX_HANDSHAKES (256) */
  maxHandshakes?: number;
  /** Largest HTTP CONNECT header section. @default DEFAULT_MAX_CONNECT_HEADER_BYTES (8 KiB) */
  maxHeaderBytes?: number;
  /** @default Node's setTimeout/clearTimeout */
  timers?: ProxyTimers;
}

/** {@link proxy}'s single-argument form, the shape forward() and expose() take. */
export interface ProxyWithClientOptions extends ProxyOptions {
  /** A connected client; every proxied connection leaves from its virtual host. */
  client: Client;
}

/** A running proxy; `port` is the real TCP port listened on (the one picked, for port 0). */
export interface ProxyTunnel extends TunnelHandle {
  /** The real interface listened on. */
  readonly host: string;
  /** "host:port" listened on. */
  readonly address: string;
}

/**
 * Listens on `listen` for SOCKS5 and HTTP CONNECT and carries every granted connection to the
 * virtual host and port it asked for, through `client`. Refusals are answered in the program's
 * protocol (SOCKS5 reply code or HTTP status, docs/TUNNELS.md) and logged. Resolves once
 * listening; rejects with ERR_LISTEN_FAILED (e.g. port in use) or ERR_INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * const socks = await proxy({ client, listen: { port: 0 } });
 * // curl --socks5-hostname 127.0.0.1:${socks.port} http://10.0.0.7:8080/
 * ```
 * `proxy(client, options)` is the same call in the earlier two-argument form.
 */
export async function proxy(options: ProxyWithClientOptions): Promise<ProxyTunnel>;
export async function proxy(client: Client, options?: ProxyOptions): Promise<ProxyTunnel>;
export async function proxy(first: Client | ProxyWithClientOptions, second: ProxyOptions = {}): Promise<ProxyTunnel> {
  // A Client is an object too: it is told apart by having no `client` field of its own.
  const [client, options]: [Client, ProxyOptions] = isWithClient(first) ? [first.client, first] : [first, second];
  const listenHost = options.listen?.host ?? DEFAULT_PROXY_LISTEN_HOST;
  const listenPort = options.listen?.port ?? DEFAULT_PROXY_PORT;
  checkPort(listenPort, 'listen.port', 0);
  const allowed = parseAllowList(options.allow);
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_PROXY_HANDSHAKE_TIMEOUT_MS;
  const maxHandshakes = options.maxHandshakes ?? DEFAULT_PROXY_MAX_HANDSHAKES;
  const timers = options.timers ?? REAL_TIMERS;
  const logger = (options.logger ?? silentLogger()).child({ tunnel: 'proxy' });
  const ledger = new TunnelLedger(logger, { keepAliveMs: options.keepAliveMs });
  options.signal?.throwIfAborted();
  // Aborts the virtual connects still in flight when the proxy stops.
  const stopping = new AbortController();
  // TCP connections not (yet) handed to the ledger: in their handshake, connecting, or lingering
  // after a refusal. Bounded by maxHandshakes; close() destroys them.
  const pending = new Set<net.Socket>();

  let error: Error | undefined;

  const accept = (socket: net.Socket): void => {
    socket.on('error', () => {});
    if (pending.size >= maxHandshakes) {
      const full = new TunnelError('ERR_PROXY_HANDSHAKE', `${maxHandshakes} connections are already in their handshake`);
      ledger.refuse({ from: `${socket.remoteAddress}:${socket.remotePort}` }, full);
      socket.destroy();
      return;
    }
    pending.add(socket);
    socket.once('close', () => pending.delete(socket));
    serveRequest(socket, requestContext);
  };
  const requestContext: ProxyRequestContext = {
    client,
    ledger,
    logger,
    allowed,
    timers,
    handshakeTimeoutMs,
    maxHeaderBytes: options.maxHeaderBytes,
    stopping: stopping.signal,
    closing: () => closer.isClosing,
    carried: (socket) => pending.delete(socket),
  };

  // As forward(): half-close passes through, no Nagle delay on pieces of a request.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: TUNNEL_TCP_HIGH_WATER_MARK_BYTES }, (socket) => accept(socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) =>
      reject(new TunnelError('ERR_LISTEN_FAILED', `cannot listen on ${listenHost}:${listenPort}: ${describe(cause)}`, { cause })),
    );
    server.listen({ port: listenPort, host: listenHost }, resolve);
  });
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  server.on('error', (cause) => logger.error({ err: cause }, 'TCP server error'));
  const { port } = server.address() as net.AddressInfo;

  const closer = closeOnce(async () => {
    stopping.abort(new TunnelError('ERR_TUNNEL_CLOSED', 'the proxy was closed'));
    if (server.listening) server.close();
    for (const socket of pending) socket.destroy();
    await ledger.destroyAll();
    await serverClosed;
    unhook();
    logger.info({ ...ledger.stats(), ...(error ? { reason: describe(error) } : {}) }, 'tunnel closed');
  });
  const { close, closed } = closer;
  const unhook = closeWhen(client, options.signal, close, (lost) => (error ??= lost));
  const address = listenHost.includes(':') ? `[${listenHost}]:${port}` : `${listenHost}:${port}`;
  logger.info({ listen: address, allow: options.allow && options.allow.length > 0 ? options.allow : 'every address' }, 'tunnel listening');

  return listenerHandle(
    { host: listenHost, port, server, ledger, stopping, stopReason: 'the proxy is shutting down', close, closed, error: () => error },
    { address },
  );
}

function isWithClient(value: Client | ProxyWithClientOptions): value is ProxyWithClientOptions {
  return typeof value === 'object' && value !== null && 'client' in value && typeof (value as { client: unknown }).client === 'object';
}
