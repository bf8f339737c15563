/**
 * The relay's WebSocket port (docs/RELAY.md "WebSocket", docs/PROTOCOL.md "Transports"): one
 * HTTP server that upgrades WS_PATH to a WebSocket carrying the same frames as the TCP port, and
 * serves the browser bundle and the example page (browser-files.ts). Each upgraded connection
 * becomes a WsTransport handed to the relay's accept path, so admission, the per-IP cap, the
 * Hello timeout, keepalive, the bounds and backpressure are the TCP port's own.
 *
 * When the relay serves TLS on its TCP port, this port serves wss with the same identity: the
 * TCP sockets are accepted here and handed to the relay's `secure` (its admission and its
 * bounded TLS 1.3 handshake, transports.ts), and only a secured socket reaches the HTTP server.
 * So a handshake under way counts against maxClients and its IP's connections exactly as on the
 * TCP port, and a certificate replaced on SIGHUP is the one the next wss client gets.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../logger.ts';
import { BROWSER_BUNDLE_PATH, BrowserFiles } from './browser-files.ts';
import { FORWARDED_FOR_HEADER, realIpOf, trustedProxies } from './real-ip.ts';
import { WS_MAX_PAYLOAD_SLACK_BYTES, WsTransport } from './ws-transport.ts';

/** The path WebSocket clients connect to. */
export const WS_PATH = '/alphanet';
/** Where the WebSocket port listens unless told: loopback, like the TCP port. */
export const DEFAULT_WS_HOST = '127.0.0.1';
export { WS_MAX_PAYLOAD_SLACK_BYTES };

/** Options of the WebSocket port (RelayOptions.websocket). */
export interface WebSocketOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Address to listen on. @default DEFAULT_WS_HOST ('127.0.0.1') */
  host?: string;
  /**
   * Proxies (addresses or CIDRs) whose X-Forwarded-For names the client's real IP
   * (docs/SECURITY.md "Behind a proxy"). @default none: the TCP peer is the real IP
   */
  trustProxy?: readonly string[];
  /**
   * Web origins (`https://game.example`) whose pages may open the WebSocket; `*` allows any
   * (docs/SECURITY.md "Browsers"). A request without an Origin (not a browser) and a page the
   * relay served itself are always allowed. @default none besides those
   */
  allowOrigins?: readonly string[];
  /**
   * Serve ws (and http) even when the relay serves TLS on its TCP port: for a TLS-terminating
   * proxy on the same machine or a network you trust, which then reaches the relay in plain
   * (docs/RELAY.md "WebSocket"). @default false (wss when the relay has a certificate)
   */
  plaintext?: boolean;
}

/** Why the relay refused a connection when its TCP socket arrived (server.ts admission). */
export interface WsRefusal {
  refusal: string;
  limit?: 'maxClients' | 'maxConnectionsPerIp';
}

/** What the WebSocket port needs from the relay. */
export interface WsListenerDeps {
  log: Logger;
  maxFrameBytes: number;
  /**
   * Real time a connection may send nothing before its upgrade (or between HTTP requests) before
   * it is closed: a socket that says nothing is no client, and is not counted as one. The relay
   * gives its Hello timeout: a real client upgrades and says Hello in milliseconds.
   */
  idleTimeoutMs: number;
  /**
   * The relay's accept path (admission, then a Connection). `refused` is the refusal decided
   * when its TCP socket arrived (wss only): it stands, so a connection refused then is never
   * admitted because room was made during its handshake.
   */
  accept(transport: WsTransport, refused: WsRefusal | undefined): void;
  /**
   * With TLS (wss): admits or refuses an accepted TCP socket and runs the relay's TLS handshake
   * on it, as the TCP port does; `served` hands over the secured socket once the handshake is
   * done. Absent: plain ws. @default undefined (ws://)
   */
  secure?: (raw: net.Socket, served: (socket: Duplex, refused: WsRefusal | undefined) => void) => void;
}

/** The WebSocket port: its HTTP server, its upgrades, its files. */
export class WsListener {
  host: string;
  port = 0;
  readonly #options: WebSocketOptions;
  readonly #deps: WsListenerDeps;
  readonly #trusted: net.BlockList | undefined;
  readonly #http: http.Server;
  /** With TLS: the listening socket, whose connections reach #http once secure. */
  readonly #tcp: net.Server | undefined;
  /** Secured sockets handed to #http and not upgraded yet (wss), with any refusal made at accept. */
  readonly #served = new Map<Duplex, WsRefusal | undefined>();
  readonly #wss: WebSocketServer;
  readonly #files = new BrowserFiles();
  readonly #allowOrigins: ReadonlySet<string>;

  constructor(options: WebSocketOptions, deps: WsListenerDeps) {
    this.#options = options;
    this.#deps = deps;
    this.host = options.host ?? DEFAULT_WS_HOST;
    this.#trusted = options.trustProxy?.length ? trustedProxies(options.trustProxy) : undefined;
    this.#allowOrigins = new Set((options.allowOrigins ?? []).map((origin) => (origin === '*' ? origin : normaliseOrigin(origin))));
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: deps.maxFrameBytes + WS_MAX_PAYLOAD_SLACK_BYTES,
      // Frames are mostly game and tunnel bytes: compressing them costs CPU and memory per
      // connection for little, and would put a queue ws measures differently in the write path.
      perMessageDeflate: false,
    });
    this.#http = http.createServer((req, res) => this.#httpOnRequest(req, res));
    // Real time, not the relay's clock: this frees a socket. On a timeout the HTTP server destroys
    // the socket (it has no 'timeout' listener). A request clears it (the first bundle request
    // may wait for a build; requestTimeout bounds a request), a response's keep-alive timeout
    // follows, and the upgrade clears it (ws sets no timeout on a WebSocket's socket).
    this.#http.on('connection', (socket: net.Socket) => socket.setTimeout(deps.idleTimeoutMs));
    this.#http.on('request', (req: http.IncomingMessage) => req.socket.setTimeout(0));
    this.#http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#httpOnUpgrade(req, socket, head));
    const secure = deps.secure;
    this.#tcp = secure === undefined ? undefined : net.createServer({ noDelay: true }, (raw) => secure(raw, (socket, refused) => this.#serve(socket, refused)));
  }

  /** True when the port serves wss (the relay's TLS identity), false for ws. */
  get tls(): boolean {
    return this.#tcp !== undefined;
  }

  /** `ws://host:port/alphanet` (`wss://` with TLS), IPv6 hosts in brackets. */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.tls ? 'wss' : 'ws'}://${host}:${this.port}${WS_PATH}`;
  }

  /** A socket whose TLS handshake is done: HTTP from here on, as a plain ws connection. */
  #serve(socket: Duplex, refused: WsRefusal | undefined): void {
    if (!this.#tcp?.listening) {
      socket.destroy();
      return;
    }
    this.#served.set(socket, refused);
    socket.once('close', () => this.#served.delete(socket));
    this.#http.emit('connection', socket);
  }

  async listen(): Promise<void> {
    const server = this.#tcp ?? this.#http;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.host, port: this.#options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#deps.log.error({ err: error }, 'websocket server error'));
    // With TLS the HTTP server never listens itself, and Node starts its checks of headersTimeout
    // and requestTimeout on 'listening': without them a request that trickles in a byte at a time
    // would be held for ever. The same bounds as the ws port's, then.
    if (server !== this.#http) this.#http.emit('listening');
    this.port = (server.address() as net.AddressInfo).port;
    this.#deps.log.info({ url: this.url }, 'websocket listening');
  }

  /** Stops accepting; the relay closes the connections it holds. */
  close(): Promise<void> {
    // Plain HTTP requests (the bundle, the page) end now; upgraded connections are the relay's to close.
    this.#http.closeAllConnections();
    for (const socket of this.#served.keys()) socket.destroy();
    this.#served.clear();
    const tcp = this.#tcp;
    if (tcp === undefined) return new Promise((resolve) => this.#http.close(() => resolve()));
    // The HTTP server never listened itself (closing it stops the checks 'listening' started);
    // only the TCP server has a port to let go.
    this.#http.close(() => {});
    return new Promise((resolve) => (tcp.listening ? tcp.close(() => resolve()) : resolve()));
  }

  #httpOnUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) => this.#deps.log.debug({ err: error }, 'websocket socket error'));
    if (pathOf(req) !== WS_PATH) {
      refuseUpgrade(socket, 'HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const realIp = realIpOf(req.socket.remoteAddress ?? '', req.headers[FORWARDED_FOR_HEADER], this.#trusted);
    const origin = req.headers.origin;
    if (!this.#originAllowed(origin, req.headers.host)) {
      // A page elsewhere would act from its visitor's real IP, that is as the visitor's virtual host.
      this.#deps.log.warn({ realIp, origin }, 'websocket refused: origin not allowed');
      refuseUpgrade(socket, 'HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 19\r\n\r\norigin not allowed\n');
      return;
    }
    const refused = this.#served.get(socket);
    // Upgraded: the relay's Connection owns it now, and closes it at shutdown.
    this.#served.delete(socket);
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      this.#deps.accept(new WsTransport(ws, socket, realIp), refused);
    });
  }

  /** No Origin (not a browser), the relay's own pages, or an origin the operator allowed. */
  #originAllowed(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    const normalised = normaliseOrigin(origin);
    if (host !== undefined && (normalised === `http://${host.toLowerCase()}` || normalised === `https://${host.toLowerCase()}`)) return true;
    return this.#allowOrigins.has('*') || this.#allowOrigins.has(normalised);
  }

  #httpOnRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = pathOf(req);
    const file = req.method === 'GET' || req.method === 'HEAD' ? this.#files.get(path) : undefined;
    if (file === undefined) {
      res.writeHead(path === WS_PATH ? 426 : 404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(path === WS_PATH ? `${WS_PATH} takes WebSocket connections\n` : 'not found\n');
      return;
    }
    file.then(
      ({ body, type }) => {
        // The bundle is public code: pages elsewhere may import it (a module script is fetched
        // with CORS). Whether they may then connect is --ws-allow-origin's call.
        const cors = path === BROWSER_BUNDLE_PATH ? { 'access-control-allow-origin': '*' } : {};
        res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', ...cors });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (error: unknown) => {
        this.#deps.log.error({ err: error, path }, 'cannot serve a browser file');
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`cannot serve ${path}: ${(error as Error).message}\n`);
      },
    );
  }
}

/**
 * Answers an upgrade the port refuses and lets its socket go, as ws's own abortHandshake does.
 * Node's HTTP server no longer times out a socket it handed to 'upgrade', so ending only our side
 * would hold it (a descriptor, and a stop waiting on it) for as long as the peer keeps its own
 * side open; destroyed once the answer is written, it goes at once.
 */
function refuseUpgrade(socket: Duplex, response: string): void {
  socket.once('finish', () => socket.destroy());
  socket.end(response);
}

/** The scheme and authority of an absolute-form request target. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i;

/**
 * The path of a request: its target up to the query, after the scheme and authority of an
 * absolute-form target (`GET http://host/alphanet`, RFC 9112 §3.2.2). Not parsed as a URL
 * against a base: a target starting with `//` (`GET //a:99999`) reads as an authority with a bad
 * host there, and the throw inside the HTTP server's 'request' or 'upgrade' handler would end
 * the relay process. Such a path is simply one the port does not serve (404).
 */
function pathOf(req: http.IncomingMessage): string {
  let target = req.url ?? '/';
  const authority = ABSOLUTE_FORM.exec(target);
  if (authority !== null) target = target.slice(authority[0].length) || '/';
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
}

/** An origin as browsers send it: scheme://host[:port], lower case, no trailing slash. */
function normaliseOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, '');
}
