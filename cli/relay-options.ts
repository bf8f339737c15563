/**
 * Every flag of the relay command, in one table: the command is built from it
 * (cli/relay-command.ts) and so is docs/RELAY.md's flag table (`npm run docs:flags`,
 * cli/relay-flags-doc.ts). A flag beats its environment variable, which beats the default.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { LevelWithSilent } from 'pino';
import {
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_IPV6_PREFIX_LENGTH,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_BOUND_PORTS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_LOG_FIELD_CHARS,
  DEFAULT_MAX_PAIRS,
  DEFAULT_MAX_PAIRS_PER_HOST,
  DEFAULT_MAX_PARTIAL_FRAME_BYTES,
  DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_MAX_SOCKETS_PER_CLIENT,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_WS_HOST,
  WS_PATH,
  trustedProxies,
  DEFAULT_DATAGRAM_BURST,
  DEFAULT_DATAGRAM_BYTE_RATE,
  DEFAULT_DATAGRAM_QUEUE_BYTES,
  DEFAULT_DATAGRAM_RATE_PPS,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  type RelayLimits,
} from '../actors/relay/index.ts';
import { DEFAULT_INSPECT_URL } from '../observe/inspect.ts';
import {
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_MAX_CONNECTIONS,
  DEFAULT_MAX_EVENT_STREAMS,
  DEFAULT_MAX_STREAM_QUEUED_BYTES,
  DEFAULT_STATUS_LIST_LIMIT,
  DEFAULT_STREAM_DRAIN_TIMEOUT_MS,
} from '../observe/observe-server.ts';
import { DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES } from '../protocol/constants.ts';
import { DEFAULT_DB_PATH, DEFAULT_IDENTITY_MODE, DEFAULT_IPV6_PREFIX_CAP, DEFAULT_SUBNET, IDENTITY_MODES, type IdentityMode } from '../storage/index.ts';

/** The relay's own parsed options. */
export interface RelayCliOptions extends RelayLimits {
  host: string;
  port: number;
  db: string;
  subnet: string;
  logLevel: LevelWithSilent;
  /** Virtual IPs per IPv6 prefix of real IPs (0 = no cap); docs/STORAGE.md. */
  ipv6PrefixCap: number;
  /** The prefix length the cap counts by. */
  ipv6PrefixLength: number;
  /** What a virtual IP is tied to: the real IP or the proven identity key (docs/PROTOCOL.md §2a). */
  identityMode: IdentityMode;
  /** `--tls-cert`: a provided certificate (PEM); with `tlsKey`. */
  tlsCert?: string;
  /** `--tls-key`: its private key (PEM). */
  tlsKey?: string;
  /** `--plaintext`: plain TCP on `port`, no TLS. */
  plaintext: boolean;
  /** `--plaintext-port`: plain TCP on this port beside TLS. */
  plaintextPort?: number;
  /** Also accept clients over WebSocket on this port. @default undefined (off) */
  wsPort?: number;
  /** @default DEFAULT_WS_HOST ('127.0.0.1') */
  wsHost: string;
  /** Proxies whose X-Forwarded-For names a WebSocket client's real IP. @default none */
  wsTrustProxy: string[];
  /** Web origins whose pages may open the WebSocket (`*`: any). @default none */
  wsAllowOrigin: string[];
  /** `--ws-plaintext`: ws on the WebSocket port even when the TCP port serves TLS. */
  wsPlaintext: boolean;
  /** NATS URL(s) of the cluster (docs/CLUSTER.md); absent: a single relay on its lowdb store. */
  cluster?: string;
  /** This relay's name in the cluster. @default `<host name>-<pid>` */
  relayId?: string;
}

/** The bounds of the observation HTTP server, as attach() takes them. */
export interface HttpBounds {
  maxEventStreams: number;
  maxStreamQueuedBytes: number;
  streamDrainTimeoutMs: number;
  statusListLimit: number;
  maxConnections: number;
}

/** The parsed observation flags. */
export interface ObserveCliOptions {
  /** Serve the dashboard, /metrics, /healthz and /api/status on this port. @default undefined (off) */
  httpPort?: number;
  /** @default DEFAULT_HTTP_HOST ('127.0.0.1') */
  httpHost: string;
  /** Stately inspector WebSocket URL. @default undefined (off); `--inspect` alone: DEFAULT_INSPECT_URL */
  inspect?: string;
  /** The HTTP server's bounds, each a flag. */
  bounds: HttpBounds;
}

/** How long a graceful stop may take before the process exits anyway (status 1). */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** One row of the table: a flag, its variable, its default and why. */
export interface RelayFlag {
  /** As commander takes it: `--port <port>`. */
  flags: string;
  env: string;
  /** The `--help` text. */
  description: string;
  /** @default none (the option is absent unless given) */
  default?: string | number;
  /** What docs/RELAY.md shows as the default, when not `default` itself. */
  defaultText?: string;
  parse?: (value: string) => unknown;
  choices?: readonly string[];
  /** Why the default is what it is: docs/RELAY.md only. */
  why?: string;
  /** The relay option a numeric flag sets, when it is one. */
  relayKey?: keyof RelayCliOptions;
  /** A bound of docs/RELAY.md "Bounds": passed to startRelay as is. */
  bound?: true;
  /** The HTTP server bound it sets, when it is one. */
  httpKey?: keyof HttpBounds;
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer ${min}..${max}`);
    }
    return n;
  };
}

/** `--ws-trust-proxy`: addresses and CIDRs, comma-separated, each checked. */
function cidrList(value: string): string[] {
  const list = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  try {
    trustedProxies(list);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return list;
}

/** `--ws-allow-origin`: `*` or origins (scheme://host[:port]), comma-separated. */
function originList(value: string): string[] {
  const list = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  for (const entry of list) {
    if (entry !== '*' && !/^https?:\/\/[^/\s]+\/?$/i.test(entry)) throw new InvalidArgumentError(`an origin is scheme://host[:port] or *, got "${entry}"`);
  }
  return list;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const U32 = 2 ** 32 - 1;
const I31 = 2 ** 31 - 1;
const SEE_BOUNDS = 'see [Bounds](#bounds)';

/** A numeric relay option. */
function numeric(flags: string, env: string, description: string, value: number, min: number, max: number, relayKey: keyof RelayCliOptions, why?: string): RelayFlag {
  return { flags, env, description, default: value, parse: integer(min, max), relayKey, ...(why ? { why } : {}) };
}

/** A bound of docs/RELAY.md "Bounds". */
function bound(flags: string, env: string, description: string, value: number, min: number, max: number, relayKey: keyof RelayCliOptions): RelayFlag {
  return { ...numeric(flags, env, description, value, min, max, relayKey, SEE_BOUNDS), bound: true };
}

/** A bound of the observation HTTP server (docs/OBSERVABILITY.md). */
function httpBound(flags: string, env: string, description: string, value: number, min: number, httpKey: keyof HttpBounds, why: string): RelayFlag {
  return { flags, env, description, default: value, parse: integer(min, I31), httpKey, why };
}

/** Every relay flag, in `--help` and docs order. */
export const RELAY_FLAGS: readonly RelayFlag[] = [
  { flags: '--host <host>', env: 'ALPHANET_HOST', description: 'address to listen on', default: DEFAULT_HOST, why: 'a fresh `npm start` exposes nothing; use `0.0.0.0` (or `::`) to serve others' },
  { flags: '--port <port>', env: 'ALPHANET_PORT', description: 'TCP port (0 = any free port)', default: DEFAULT_PORT, parse: integer(0, 65535), why: "the original server's port; `0` picks a free one" },
  {
    flags: '--tls-cert <file>',
    env: 'ALPHANET_TLS_CERT',
    description: 'TLS certificate (PEM) to serve, with --tls-key; SIGHUP reads both again',
    defaultText: '`tls-cert.pem` beside `--db`, made on first start',
    why: 'without it the relay makes a key and a self-signed certificate once and reuses them, so its fingerprint stays; clients pin the key (docs/RELAY.md "TLS")',
  },
  { flags: '--tls-key <file>', env: 'ALPHANET_TLS_KEY', description: 'private key (PEM) of --tls-cert', defaultText: '`tls-key.pem` beside `--db` (mode 0600), made on first start' },
  {
    flags: '--plaintext',
    env: 'ALPHANET_PLAINTEXT',
    description: 'serve plain TCP on --port instead of TLS (the environment variable: any value)',
    defaultText: 'off (TLS 1.3)',
    why: 'for tests and trusted networks: anyone on the path can read and change plain TCP',
  },
  {
    flags: '--plaintext-port <port>',
    env: 'ALPHANET_PLAINTEXT_PORT',
    description: 'also serve plain TCP on this port, beside TLS on --port (0 = any free port)',
    defaultText: 'off',
    parse: integer(0, 65535),
    why: 'old clients and trusted networks keep working while others move to TLS',
  },
  numeric('--tls-handshake-timeout <ms>', 'ALPHANET_TLS_HANDSHAKE_TIMEOUT_MS', 'time a TLS handshake may take after TCP connects', DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, 1, I31, 'tlsHandshakeTimeoutMs', 'a real client needs a few round trips; a connection that never finishes holds its per-IP slot only this long'),
  { flags: '--db <file>', env: 'ALPHANET_DB', description: 'address store file', default: DEFAULT_DB_PATH, why: 'the permanent real-IP → virtual-IP map' },
  { flags: '--subnet <cidr>', env: 'ALPHANET_SUBNET', description: 'subnet virtual IPs come from', default: DEFAULT_SUBNET, why: 'shared address space (RFC 6598): about 4 million addresses that clash with no LAN; fixed once the store exists' },
  {
    flags: '--identity-mode <mode>',
    env: 'ALPHANET_IDENTITY_MODE',
    description: 'what a permanent virtual IP is tied to: ip (the real IP) or key (the client\'s proven identity key)',
    default: DEFAULT_IDENTITY_MODE,
    choices: IDENTITY_MODES,
    why: '`ip` is the seed\'s rule; `key` gives users behind one NAT their own addresses and keeps a laptop\'s on any network, and refuses clients that prove no key; fixed once the store exists (docs/STORAGE.md "Identity mode")',
  },
  {
    flags: '--cluster <url>',
    env: 'ALPHANET_CLUSTER',
    description: 'share one address space with the relays on this NATS server (nats://host:4222, several comma-separated)',
    defaultText: 'off (the --db store)',
    why: 'relays on one NATS share the address map in JetStream KV and presence; docs/CLUSTER.md',
  },
  {
    flags: '--relay-id <name>',
    env: 'ALPHANET_RELAY_ID',
    description: "this relay's name in the cluster (letters, digits, '-', '_')",
    defaultText: '`<host name>-<pid>`',
    why: 'named in presence and beside each address it assigned; unique per running relay',
  },
  { flags: '--log-level <level>', env: 'ALPHANET_LOG_LEVEL', description: 'log level (logs go to stderr)', default: 'info', choices: LOG_LEVELS, why: '`debug` adds a line per TCP connection and socket close' },
  numeric('--keepalive-interval <ms>', 'ALPHANET_KEEPALIVE_INTERVAL_MS', 'ping each client this often', DEFAULT_KEEPALIVE_INTERVAL_MS, 1, U32, 'keepaliveIntervalMs', 'one 9-byte Ping per client every 15 s keeps NAT mappings (often 30–60 s) alive'),
  numeric('--keepalive-timeout <ms>', 'ALPHANET_KEEPALIVE_TIMEOUT_MS', 'drop a client silent this long', DEFAULT_KEEPALIVE_TIMEOUT_MS, 1, U32, 'keepaliveTimeoutMs', "three missed pings: rides out a Wi-Fi drop, frees a vanished player's ports within a minute"),
  numeric('--hello-timeout <ms>', 'ALPHANET_HELLO_TIMEOUT_MS', 'time allowed for Hello', DEFAULT_HELLO_TIMEOUT_MS, 1, I31, 'helloTimeoutMs', 'a real client says Hello in milliseconds; port scanners are cut off'),
  numeric('--request-timeout <ms>', 'ALPHANET_REQUEST_TIMEOUT_MS', 'time a target has to answer a request', DEFAULT_REQUEST_TIMEOUT_MS, 1, I31, 'requestTimeoutMs', "the target's application decides accept/deny; 10 s covers a slow or busy one"),
  numeric('--idle-timeout <ms>', 'ALPHANET_IDLE_TIMEOUT_MS', 'close socket connections idle this long (0 = never)', DEFAULT_IDLE_TIMEOUT_MS, 0, I31, 'idleTimeoutMs', '10 minutes: a lobby can sit quiet between rounds'),
  numeric('--max-frame-bytes <n>', 'ALPHANET_MAX_FRAME_BYTES', 'largest frame accepted', DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES, U32, 'maxFrameBytes', '256 KiB bounds what one frame can make the relay buffer; announced in VirtualIP'),
  numeric('--max-sockets-per-client <n>', 'ALPHANET_MAX_SOCKETS_PER_CLIENT', 'ports plus socket connections per client connection', DEFAULT_MAX_SOCKETS_PER_CLIENT, 1, I31, 'maxSocketsPerClient', 'generous for a game server, stops a runaway loop'),
  numeric('--max-pending-requests <n>', 'ALPHANET_MAX_PENDING_REQUESTS', 'requests in flight per client connection', DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT, 1, I31, 'maxPendingRequestsPerClient', 'more get `RequestFailed(LimitReached)`, not a disconnect'),
  numeric('--max-clients <n>', 'ALPHANET_MAX_CLIENTS', 'client connections at once', DEFAULT_MAX_CLIENTS, 1, I31, 'maxClients', "the next one gets `Error(TooManyClients)`; raise the process's file limit (`ulimit -n`) to match"),
  numeric('--max-connections-per-ip <n>', 'ALPHANET_MAX_CONNECTIONS_PER_IP', 'client connections at once from one real IP', DEFAULT_MAX_CONNECTIONS_PER_IP, 1, I31, 'maxConnectionsPerIp', "a person's game, tunnels and `nc` share one machine; the next gets `Error(TooManyClients)`, so one address cannot take every slot"),
  numeric('--high-water-mark <bytes>', 'ALPHANET_HIGH_WATER_MARK_BYTES', 'queued bytes per destination before its sources are paused', DEFAULT_HIGH_WATER_MARK_BYTES, 1, I31, 'highWaterMarkBytes', '512 KiB queued for one client before the relay stops reading the clients feeding it'),
  numeric('--ipv6-prefix-cap <n>', 'ALPHANET_IPV6_PREFIX_CAP', 'virtual IPs one IPv6 prefix (--ipv6-prefix) of real IPs may hold (0 = no cap)', DEFAULT_IPV6_PREFIX_CAP, 0, U32, 'ipv6PrefixCap', 'a host often owns a whole /64, so one network cannot use up the pool; the next gets `Error(AddressSpaceExhausted)` (docs/STORAGE.md "IPv6")'),
  bound('--frame-timeout <ms>', 'ALPHANET_FRAME_TIMEOUT_MS', 'a frame must complete this soon after its first byte', DEFAULT_FRAME_TIMEOUT_MS, 1, I31, 'frameTimeoutMs'),
  bound('--max-partial-frame-bytes-per-host <n>', 'ALPHANET_MAX_PARTIAL_FRAME_BYTES_PER_HOST', "bytes of one host's incomplete frames before its connections are not read", DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST, 1, 2 ** 40, 'maxPartialFrameBytesPerHost'),
  bound('--max-partial-frame-bytes <n>', 'ALPHANET_MAX_PARTIAL_FRAME_BYTES', 'bytes of incomplete frames relay-wide before connections holding some are not read', DEFAULT_MAX_PARTIAL_FRAME_BYTES, 1, 2 ** 40, 'maxPartialFrameBytes'),
  bound('--max-pairs-per-host <n>', 'ALPHANET_MAX_PAIRS_PER_HOST', 'socket connections one host may have requested', DEFAULT_MAX_PAIRS_PER_HOST, 1, I31, 'maxPairsPerHost'),
  bound('--max-pairs <n>', 'ALPHANET_MAX_PAIRS', 'socket connections relay-wide', DEFAULT_MAX_PAIRS, 1, I31, 'maxPairs'),
  bound('--max-pending-requests-total <n>', 'ALPHANET_MAX_PENDING_REQUESTS_TOTAL', 'requests waiting on targets relay-wide', DEFAULT_MAX_PENDING_REQUESTS, 1, I31, 'maxPendingRequests'),
  bound('--max-bound-ports <n>', 'ALPHANET_MAX_BOUND_PORTS', 'bound ports relay-wide', DEFAULT_MAX_BOUND_PORTS, 1, I31, 'maxBoundPorts'),
  bound('--max-queued-bytes <n>', 'ALPHANET_MAX_QUEUED_BYTES', 'bytes queued for all destinations before data is held back', DEFAULT_MAX_QUEUED_BYTES, 1, 2 ** 40, 'maxQueuedBytes'),
  bound('--slow-consumer-timeout <ms>', 'ALPHANET_SLOW_CONSUMER_TIMEOUT_MS', 'drop a destination that takes no bytes this long while others wait (0 = the keepalive timeout)', 0, 0, I31, 'slowConsumerTimeoutMs'),
  bound('--ipv6-prefix <bits>', 'ALPHANET_IPV6_PREFIX', 'IPv6 clients in one prefix this long count as one host', DEFAULT_IPV6_PREFIX_LENGTH, 1, 128, 'ipv6PrefixLength'),
  bound('--max-log-field-chars <n>', 'ALPHANET_MAX_LOG_FIELD_CHARS', 'client-supplied text in logs is cut at this many characters', DEFAULT_MAX_LOG_FIELD_CHARS, 16, I31, 'maxLogFieldChars'),
  bound('--datagram-rate <pps>', 'ALPHANET_DATAGRAM_RATE', 'datagrams one host may send per second (more are dropped)', DEFAULT_DATAGRAM_RATE_PPS, 1, I31, 'datagramRate'),
  bound('--datagram-burst <n>', 'ALPHANET_DATAGRAM_BURST', 'datagrams one host may send at once above its rate', DEFAULT_DATAGRAM_BURST, 1, I31, 'datagramBurst'),
  bound('--datagram-byte-rate <bytes>', 'ALPHANET_DATAGRAM_BYTE_RATE', 'datagram bytes one host may send per second (more are dropped)', DEFAULT_DATAGRAM_BYTE_RATE, 1024, 2 ** 40, 'datagramByteRate'),
  bound('--datagram-queue-bytes <bytes>', 'ALPHANET_DATAGRAM_QUEUE_BYTES', "a destination's queued bytes at which datagrams to it are dropped", DEFAULT_DATAGRAM_QUEUE_BYTES, 1, I31, 'datagramQueueBytes'),
  {
    flags: '--stop-timeout <ms>',
    env: 'ALPHANET_STOP_TIMEOUT_MS',
    description: 'longest a graceful stop may take before the process exits anyway',
    default: DEFAULT_STOP_TIMEOUT_MS,
    parse: integer(1, I31),
    why: 'a stuck disk or peer cannot keep a stopping relay alive; 10 s covers the 1 s linger and a store flush',
  },
  {
    flags: '--ws-port <port>',
    env: 'ALPHANET_WS_PORT',
    description: `also accept clients over WebSocket on this port, at ${WS_PATH} (0 = any free port)`,
    defaultText: 'off',
    parse: integer(0, 65535),
    why: `the same protocol in binary messages, with the same limits; wss (and https) with the TCP port's key and certificate unless \`--plaintext\` or \`--ws-plaintext\`; the port also serves the browser bundle at \`/alphanet.js\` and an example page at \`/\`; prints \`websocket on URL (how)\` on stdout`,
  },
  {
    flags: '--ws-plaintext',
    env: 'ALPHANET_WS_PLAINTEXT',
    description: 'serve ws and http on the WebSocket port even when --port serves TLS (the environment variable: any value)',
    defaultText: 'off (wss with the TCP port\'s key)',
    why: 'for a TLS-terminating proxy on this machine or a network you trust, in front of the WebSocket port; browsers then check the proxy\'s certificate (docs/RELAY.md "WebSocket")',
  },
  { flags: '--ws-host <host>', env: 'ALPHANET_WS_HOST', description: 'address the WebSocket port listens on', default: DEFAULT_WS_HOST, why: 'as `--host`: only this machine unless told otherwise' },
  {
    flags: '--ws-trust-proxy <cidrs>',
    env: 'ALPHANET_WS_TRUST_PROXY',
    description: 'proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For names a WebSocket client',
    defaultText: 'none',
    parse: cidrList,
    why: 'the real IP is the right-most X-Forwarded-For hop that is not a trusted proxy; from any other peer the header is ignored (docs/SECURITY.md)',
  },
  {
    flags: '--ws-allow-origin <origins>',
    env: 'ALPHANET_WS_ALLOW_ORIGIN',
    description: 'web origins (comma-separated, `*` for any) whose pages may open the WebSocket',
    defaultText: "the relay's own pages",
    parse: originList,
    why: 'a page elsewhere would connect from its visitor\'s real IP, as the visitor\'s virtual host; clients that are not browsers send no Origin and are not affected (docs/SECURITY.md)',
  },
  {
    flags: '--http-port <port>',
    env: 'ALPHANET_HTTP_PORT',
    description: 'serve the dashboard, /metrics, /healthz and /api/status on this port (0 = any free port)',
    defaultText: 'off',
    parse: integer(0, 65535),
    why: 'the dashboard, `/api/status`, `/api/events`, `/metrics`, `/healthz` (docs/OBSERVABILITY.md); prints `dashboard on URL` on stdout',
  },
  { flags: '--http-host <host>', env: 'ALPHANET_HTTP_HOST', description: 'address the HTTP server listens on', default: DEFAULT_HTTP_HOST, why: 'only this machine sees the dashboard unless told otherwise' },
  httpBound('--http-max-streams <n>', 'ALPHANET_HTTP_MAX_STREAMS', '/api/events streams at once (more get 503)', DEFAULT_MAX_EVENT_STREAMS, 1, 'maxEventStreams', 'live dashboards at once'),
  httpBound('--http-stream-max-queued-bytes <bytes>', 'ALPHANET_HTTP_STREAM_MAX_QUEUED_BYTES', 'bytes one /api/events stream may have queued before it is cut', DEFAULT_MAX_STREAM_QUEUED_BYTES, 1024, 'maxStreamQueuedBytes', 'a live stream still holding more at the next push is cut'),
  httpBound('--http-stream-drain-timeout <ms>', 'ALPHANET_HTTP_STREAM_DRAIN_TIMEOUT_MS', 'cut an /api/events stream that has not drained for this long', DEFAULT_STREAM_DRAIN_TIMEOUT_MS, 1, 'streamDrainTimeoutMs', 'a stalled dashboard cannot hold its queue for ever'),
  httpBound('--http-list-limit <n>', 'ALPHANET_HTTP_LIST_LIMIT', 'most clients and most pairs one status lists (?limit= asks for fewer)', DEFAULT_STATUS_LIST_LIMIT, 0, 'statusListLimit', 'a status costs event-loop time in proportion to what it lists, so it lists one page and counts the rest'),
  httpBound('--http-max-connections <n>', 'ALPHANET_HTTP_MAX_CONNECTIONS', 'TCP connections to the HTTP server at once', DEFAULT_HTTP_MAX_CONNECTIONS, 1, 'maxConnections', 'bounds what HTTP clients can make the relay hold'),
  {
    flags: '--inspect [url]',
    env: 'ALPHANET_INSPECT',
    description: `stream every actor to a Stately inspector over WebSocket (default ${DEFAULT_INSPECT_URL})`,
    defaultText: `off; \`${DEFAULT_INSPECT_URL}\` when given alone`,
    why: 'logs once when it reaches the inspector, once per outage when it cannot, and when it loses it (docs/OBSERVABILITY.md)',
  },
];

/** commander's attribute name of a flag: `--max-frame-bytes <n>` → `maxFrameBytes`. */
export function attributeName(flags: string): string {
  return flags.slice(2).split(' ')[0].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Adds every relay flag of {@link RELAY_FLAGS} to `command`. */
export function addRelayOptions(command: Command): Command {
  for (const row of RELAY_FLAGS) {
    const option = new Option(row.flags, row.description).env(row.env);
    if (row.default !== undefined) option.default(row.default);
    if (row.parse) option.argParser(row.parse);
    if (row.choices) option.choices(row.choices);
    command.addOption(option);
  }
  return command;
}

/** The relay's own options out of commander's parsed options (unknown keys are left alone). */
export function parseRelayCliOptions(raw: Record<string, unknown>): RelayCliOptions {
  const options = {
    host: String(raw.host),
    port: Number(raw.port),
    db: String(raw.db),
    subnet: String(raw.subnet),
    identityMode: (raw.identityMode ?? DEFAULT_IDENTITY_MODE) as IdentityMode,
    logLevel: String(raw.logLevel) as LevelWithSilent,
    plaintext: raw.plaintext !== undefined && raw.plaintext !== false,
    ...(raw.tlsCert === undefined ? {} : { tlsCert: String(raw.tlsCert) }),
    ...(raw.tlsKey === undefined ? {} : { tlsKey: String(raw.tlsKey) }),
    ...(raw.plaintextPort === undefined ? {} : { plaintextPort: Number(raw.plaintextPort) }),
    wsPort: raw.wsPort === undefined ? undefined : Number(raw.wsPort),
    wsHost: String(raw.wsHost ?? DEFAULT_WS_HOST),
    wsTrustProxy: Array.isArray(raw.wsTrustProxy) ? (raw.wsTrustProxy as string[]) : [],
    wsAllowOrigin: Array.isArray(raw.wsAllowOrigin) ? (raw.wsAllowOrigin as string[]) : [],
    wsPlaintext: raw.wsPlaintext !== undefined && raw.wsPlaintext !== false,
    ...(raw.cluster === undefined ? {} : { cluster: String(raw.cluster) }),
    ...(raw.relayId === undefined ? {} : { relayId: String(raw.relayId) }),
  } as RelayCliOptions;
  const numbers = options as unknown as Record<string, number>;
  for (const row of RELAY_FLAGS) {
    if (row.relayKey) numbers[row.relayKey] = Number(raw[attributeName(row.flags)]);
  }
  return options;
}

/** The bounds (docs/RELAY.md "Bounds") out of the parsed options, for startRelay. */
export function boundOptions(cli: RelayCliOptions): Partial<RelayLimits> {
  return Object.fromEntries(RELAY_FLAGS.filter((row) => row.bound).map((row) => [row.relayKey, cli[row.relayKey as keyof RelayCliOptions]]));
}

/** The observation flags out of commander's parsed options. */
export function parseObserveCliOptions(raw: Record<string, unknown>): ObserveCliOptions {
  const bounds: Record<string, number> = {};
  for (const row of RELAY_FLAGS) {
    if (!row.httpKey) continue;
    const value = raw[attributeName(row.flags)];
    bounds[row.httpKey] = value === undefined ? Number(row.default) : Number(value);
  }
  return {
    httpPort: raw.httpPort === undefined ? undefined : Number(raw.httpPort),
    httpHost: String(raw.httpHost ?? DEFAULT_HTTP_HOST),
    inspect: raw.inspect === undefined || raw.inspect === false ? undefined : raw.inspect === true ? DEFAULT_INSPECT_URL : String(raw.inspect),
    bounds: bounds as unknown as HttpBounds,
  };
}
