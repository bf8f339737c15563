/**
 * The client in a browser (docs/CLIENT.md "From a browser"): `connect({ url: 'ws://…/alphanet' })`
 * over the global WebSocket, and the same Client, VirtualSocket and VirtualConnection as in Node,
 * less the Duplex view. This is the entry of the bundle the relay serves at `/alphanet.js`
 * (scripts/browser-bundle.mjs); nothing it imports may be Node-only, and the build fails if
 * anything is.
 */
import { Client, type ConnectOptions } from './client.ts';
import type { ClientPlatform } from './platform.ts';
import { webSocketOpener, type WebSocketLike } from './web-socket-transport.ts';
import { ClientError } from './errors.ts';
import type { Logger } from '../logger.ts';

/** The path of the relay's WebSocket (ws-server.ts WS_PATH). */
const WS_PATH = '/alphanet';

/** The WebSocket of the relay that served this page, when it did: ws(s)://<page host>/alphanet. */
function pageRelayUrl(): string {
  const page = (globalThis as { location?: { protocol: string; host: string } }).location;
  if (page === undefined || !/^https?:$/.test(page.protocol)) {
    throw new ClientError('ERR_INVALID_ARGUMENT', 'connect() needs { url: "ws://host:port/alphanet" } outside a page served over HTTP');
  }
  return `${page.protocol === 'https:' ? 'wss:' : 'ws:'}//${page.host}${WS_PATH}`;
}

/**
 * A logger that drops everything, without pino (a fifth of the bundle). The client calls only
 * the level methods; a logger given in the options (pino's browser build, say) is used as is.
 */
function silentLogger(): Logger {
  const drop = (): void => {};
  const logger = { level: 'silent', fatal: drop, error: drop, warn: drop, info: drop, debug: drop, trace: drop, silent: drop, child: () => logger };
  return logger as unknown as Logger;
}

const BROWSER_PLATFORM: ClientPlatform = {
  open: webSocketOpener((url) => new WebSocket(url) as unknown as WebSocketLike),
  toDuplex: undefined,
  defaultRelay: pageRelayUrl,
  silentLogger,
};

/**
 * Connects to a relay over WebSocket and resolves once the client knows its virtual IP.
 * Without a `url`, the relay that served the page. A host:port `relay` is refused: a browser
 * cannot open TCP.
 *
 * @example
 * ```js
 * import { connect } from '/alphanet.js';
 * const client = await connect({ url: 'ws://127.0.0.1:8080/alphanet' });
 * console.log(client.virtualIp);
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const url = options.url ?? options.relay ?? pageRelayUrl();
  if (!/^wss?:\/\//i.test(url)) {
    throw new ClientError('ERR_INVALID_ARGUMENT', `a browser reaches the relay over WebSocket: give { url: "ws://host:port/alphanet" }, not "${url}"`);
  }
  // Identity keys and end-to-end encryption are Node's (node-identity.ts), left out of this
  // bundle: a browser client says Hello version 1 (docs/CLIENT.md "From a browser").
  if (options.identity !== undefined && options.identity !== false) {
    throw new ClientError('ERR_UNSUPPORTED', 'a browser client has no identity key (identity keys and end-to-end encryption need Node): leave out identity');
  }
  return new Client({ ...options, url }, BROWSER_PLATFORM).start(options.signal);
}

export { Client, parseRelayUrl, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RECONNECT_POLICY } from './client.ts';
export type { ConnectOptions, ReconnectPolicy, ClientView } from './client.ts';
export type { ActorView } from './actor-view.ts';
export type { Clock } from './timer.ts';
export { VirtualSocket, DEFAULT_ACCEPT_BACKLOG } from './virtual-socket.ts';
export type { ConnectionRequest, ListenOptions, SocketConnectOptions, VirtualSocketView } from './virtual-socket.ts';
export { VirtualConnection, WINDOW_UPDATE_THRESHOLD_BYTES, WINDOW_GROWTH_FACTOR } from './connection.ts';
export type { VirtualConnectionEvents } from './connection.ts';
export * from './errors.ts';
