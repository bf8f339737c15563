/**
 * Options of the relay and their defaults. The defaults are chosen for a game community: a
 * few hundred to a few thousand players on one modest machine, long LAN-style sessions, home
 * connections that drop for a few seconds. docs/RELAY.md gives the reasoning for each.
 */
import type { InspectionEvent } from 'xstate';
import type { Logger } from '../logger.ts';
import type { AddressStore } from '../../storage/address-store.ts';
import type { RemoteRouter } from './cluster/remote-router.ts';
import { DEFAULT_MAX_FRAME_BYTES } from '../../protocol/constants.ts';
import { DEFAULT_IDENTITY_MODE, type IdentityMode } from './identity.ts';
import type { RelayTlsOptions } from './tls.ts';
import type { WebSocketOptions } from './ws-server.ts';

/** Where the relay listens by default: loopback, so a fresh `npm start` exposes nothing. */
export const DEFAULT_HOST = '127.0.0.1';
/** The original AlphaNET server's port. */
export const DEFAULT_PORT = 1337;
/** One Ping per client every 15 s: cheap (9 bytes), and keeps NAT mappings alive. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
/** Three missed pings: rides out a Wi-Fi hiccup, drops a vanished player within a minute. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 45_000;
/** Time to send Hello after TCP connects. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
/**
 * Time a TLS handshake may take after TCP connects. A real client finishes in a few round trips;
 * a connection that never does holds a per-IP slot only this long.
 */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Time a target has to answer a forwarded request. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** A socket connection with no traffic either way for 10 minutes is closed (0 disables). */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000;
/** Sockets (bound ports, and socket connections) one client connection may hold. */
export const DEFAULT_MAX_SOCKETS_PER_CLIENT = 1024;
/** Requests one client may have waiting on targets (§6). */
export const DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT = 256;
/** Client connections at once. */
export const DEFAULT_MAX_CLIENTS = 20_000;
/**
 * Client connections at once from one real IP. A person runs a game, a tunnel and `alphanet nc`
 * from one machine; a few hundred is generous for that and stops one address taking every slot.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
/** A destination's queued outgoing bytes above which the relay stops reading its sources. */
export const DEFAULT_HIGH_WATER_MARK_BYTES = 512 * 1024;

// Bounds on what a client can make the relay hold (docs/RELAY.md "Bounds", issue 9).

/**
 * A frame must complete within 30 s of its first byte, counting only time the relay was reading
 * the connection: a 256 KiB frame needs only ~70 kbit/s for that, a trickle never gets there.
 */
export const DEFAULT_FRAME_TIMEOUT_MS = 30_000;
/** Bytes of incomplete (and held) frames of one host's connections: 32 full-size frames at once. */
export const DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST = 8 * 1024 * 1024;
/** Bytes of incomplete (and held) frames relay-wide. */
export const DEFAULT_MAX_PARTIAL_FRAME_BYTES = 64 * 1024 * 1024;
/** Socket connections (open or being requested) one host may have asked for: ~8 KB each, ~32 MB. */
export const DEFAULT_MAX_PAIRS_PER_HOST = 4096;
/** Socket connections relay-wide: ~8 KB each, ~512 MB at the limit. */
export const DEFAULT_MAX_PAIRS = 65_536;
/** Requests waiting on targets relay-wide. */
export const DEFAULT_MAX_PENDING_REQUESTS = 16_384;
/** Bound ports relay-wide. */
export const DEFAULT_MAX_BOUND_PORTS = 131_072;
/** Bytes queued for all destinations together, beyond which no source's data is read. */
export const DEFAULT_MAX_QUEUED_BYTES = 128 * 1024 * 1024;
/** IPv6 clients count per /64 for the per-host limits: one subscriber's usual allocation. */
export const DEFAULT_IPV6_PREFIX_LENGTH = 64;
/** Longest client-supplied text (Error messages) put into a log line or a bus event, in characters. */
export const DEFAULT_MAX_LOG_FIELD_CHARS = 256;

// Datagrams (docs/PROTOCOL.md §10, docs/RELAY.md "Bounds").

/**
 * Datagrams one host may send per second. A game client sends 20–128 a second and a server for
 * 64 players a few thousand; 25,000 leaves room for a busy server behind one address while one
 * host cannot spend the relay's whole event loop on datagrams.
 */
export const DEFAULT_DATAGRAM_RATE_PPS = 25_000;
/** Datagrams a host may send at once above its rate (the bucket's size): 0.2 s at the default rate. */
export const DEFAULT_DATAGRAM_BURST = 5_000;
/** Datagram bytes (frames) one host may send per second: 32 MiB/s, ~270 Mbit/s. Its burst lasts as long as the packet burst. */
export const DEFAULT_DATAGRAM_BYTE_RATE = 32 * 1024 * 1024;
/**
 * A destination's queued outgoing bytes at or above which datagrams to it are dropped: 64 KiB
 * is ~50 ms of a busy game stream, after which a datagram is late and worth nothing. It holds
 * eight of the largest datagrams, so a reader that keeps up never loses one to it.
 */
export const DEFAULT_DATAGRAM_QUEUE_BYTES = 64 * 1024;

/**
 * The relay's source of time. Its shape is xstate's `Clock` plus `now()`, so xstate's
 * `SimulatedClock` is one: a spec can run the relay's timeouts (hello, request, keepalive, sweep)
 * on simulated time while the bytes still cross real loopback TCP.
 */
export interface RelayClock {
  /** Milliseconds since the epoch (or since the simulation began). */
  now(): number;
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
}

/** Real time: Date.now and the host's timers (which the relay unrefs where it can). */
export const SYSTEM_CLOCK: RelayClock = {
  now: () => Date.now(),
  setTimeout: (fn, timeout) => setTimeout(fn, timeout),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
};

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** Address to listen on. @default DEFAULT_HOST ('127.0.0.1') */
  host?: string;
  /** TCP port; 0 picks a free one. @default DEFAULT_PORT (1337) */
  port?: number;
  /**
   * Key and certificate (PEM): the relay serves TLS 1.3 on `port`. Without it, plain TCP, as the
   * seed did: the programmatic default, so an embedded or test relay needs no files. The CLI
   * (`alphanet relay`, `npm start`) always passes one unless `--plaintext` (docs/RELAY.md "TLS").
   * @default undefined (plain TCP)
   */
  tls?: RelayTlsOptions;
  /** With `tls`: also serve plain TCP on this port (0 picks a free one). @default undefined (TLS only) */
  plaintextPort?: number;
  /** Time a TLS handshake may take after TCP connects. @default DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS (10 s) */
  tlsHandshakeTimeoutMs?: number;
  /** The permanent real-IP → virtual-IP map (required). The relay flushes it on close; the caller closes it. */
  store: AddressStore;
  /**
   * What a client's permanent virtual IP is tied to (docs/PROTOCOL.md §2a): `ip`, its real IP
   * (a client may still prove a key, which its peers then hear); `key`, the Ed25519 key it proves
   * at Hello (a client that proves none is refused with IdentityRequired). Must match the store's
   * mode when the store records one. @default DEFAULT_IDENTITY_MODE ('ip')
   */
  identityMode?: IdentityMode;
  /** Routes requests for ports held on other relays of a cluster (docs/CLUSTER.md). @default undefined (none) */
  remote?: RemoteRouter;
  /** @default a silent logger */
  logger?: Logger;
  /** Ping interval per client (§4). @default DEFAULT_KEEPALIVE_INTERVAL_MS (15 s) */
  keepaliveIntervalMs?: number;
  /** A client silent this long is dropped (§4). @default DEFAULT_KEEPALIVE_TIMEOUT_MS (45 s) */
  keepaliveTimeoutMs?: number;
  /** Time allowed for Hello (§2.1). @default DEFAULT_HELLO_TIMEOUT_MS (10 s) */
  helloTimeoutMs?: number;
  /** Time a target has to answer a forwarded request (§6). @default DEFAULT_REQUEST_TIMEOUT_MS (10 s) */
  requestTimeoutMs?: number;
  /** Socket connections idle this long are closed; 0 disables (§8). @default DEFAULT_IDLE_TIMEOUT_MS (10 min) */
  idleTimeoutMs?: number;
  /** Largest frame accepted and announced (§1). @default DEFAULT_MAX_FRAME_BYTES (256 KiB) */
  maxFrameBytes?: number;
  /** Ports plus socket connections per client connection (§5). @default DEFAULT_MAX_SOCKETS_PER_CLIENT (1024) */
  maxSocketsPerClient?: number;
  /** Requests in flight per client (§6). @default DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT (256) */
  maxPendingRequestsPerClient?: number;
  /** Client connections at once (§9 TooManyClients). @default DEFAULT_MAX_CLIENTS (20,000) */
  maxClients?: number;
  /** Client connections at once from one real IP (§9 TooManyClients). @default DEFAULT_MAX_CONNECTIONS_PER_IP (256) */
  maxConnectionsPerIp?: number;
  /** Queued outgoing bytes per destination before its sources are paused (§7). @default DEFAULT_HIGH_WATER_MARK_BYTES (512 KiB) */
  highWaterMarkBytes?: number;
  /**
   * A frame must complete within this time of its first byte, counting only time the relay read
   * the connection; else `Error(FrameTimeout)`. @default DEFAULT_FRAME_TIMEOUT_MS (30 s)
   */
  frameTimeoutMs?: number;
  /**
   * Bytes of incomplete or held frames of one host's connections before those connections are
   * not read until it falls. @default DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST (8 MiB)
   */
  maxPartialFrameBytesPerHost?: number;
  /** The same relay-wide. @default DEFAULT_MAX_PARTIAL_FRAME_BYTES (64 MiB) */
  maxPartialFrameBytes?: number;
  /** Socket connections one host may have requested and not closed (RequestFailed LimitReached). @default DEFAULT_MAX_PAIRS_PER_HOST (4096) */
  maxPairsPerHost?: number;
  /** Socket connections relay-wide (RequestFailed LimitReached). @default DEFAULT_MAX_PAIRS (65,536) */
  maxPairs?: number;
  /** Requests waiting on targets relay-wide (RequestFailed LimitReached). @default DEFAULT_MAX_PENDING_REQUESTS (16,384) */
  maxPendingRequests?: number;
  /** Bound ports relay-wide (BindResponse LimitReached). @default DEFAULT_MAX_BOUND_PORTS (131,072) */
  maxBoundPorts?: number;
  /** Bytes queued for all destinations together before sources' data is held back (§7). @default DEFAULT_MAX_QUEUED_BYTES (128 MiB) */
  maxQueuedBytes?: number;
  /**
   * A destination holding sources back that takes no bytes for this long is dropped with
   * `Error(SlowConsumer)` (§7); 0 means the keepalive timeout. @default the keepalive timeout (45 s)
   */
  slowConsumerTimeoutMs?: number;
  /** IPv6 clients in one prefix of this length count as one host for the per-IP/per-host limits. @default DEFAULT_IPV6_PREFIX_LENGTH (64) */
  ipv6PrefixLength?: number;
  /** Client-supplied text in log lines and bus events is cut at this many characters. @default DEFAULT_MAX_LOG_FIELD_CHARS (256) */
  maxLogFieldChars?: number;
  /** Datagrams one host (host key) may send per second; more are dropped (§10). @default DEFAULT_DATAGRAM_RATE_PPS (25,000) */
  datagramRate?: number;
  /** Datagrams a host may send at once above its rate. @default DEFAULT_DATAGRAM_BURST (5,000) */
  datagramBurst?: number;
  /** Datagram frame bytes one host may send per second. @default DEFAULT_DATAGRAM_BYTE_RATE (32 MiB) */
  datagramByteRate?: number;
  /** A destination's queue at or above which datagrams to it are dropped (§10). @default DEFAULT_DATAGRAM_QUEUE_BYTES (64 KiB) */
  datagramQueueBytes?: number;
  /** Receives the inspection events of every relay actor (for the Stately inspector). @default undefined */
  inspect?: (event: InspectionEvent) => void;
  /**
   * Time for every timeout, the sweep and every timestamp, also handed to each machine's actor
   * (`createActor(machine, { clock })`). @default SYSTEM_CLOCK (real time)
   */
  clock?: RelayClock;
  /**
   * Also accept clients over WebSocket on this port (docs/RELAY.md "WebSocket"), with the same
   * limits; the port also serves the browser bundle. With `tls` it serves wss (and https) with
   * the same key and certificate, TLS 1.3 only; without, ws (and http).
   * @default undefined (TCP only)
   */
  websocket?: WebSocketOptions;
}

/** Every option resolved. */
export type ResolvedRelayOptions = Required<Omit<RelayOptions, 'logger' | 'inspect' | 'tls' | 'plaintextPort' | 'websocket' | 'remote'>> &
  Pick<RelayOptions, 'inspect' | 'websocket' | 'remote'> & { logger: Logger };

/** The numeric limits, as reported by `status()`. */
export interface RelayLimits {
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  helloTimeoutMs: number;
  tlsHandshakeTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxFrameBytes: number;
  maxSocketsPerClient: number;
  maxPendingRequestsPerClient: number;
  maxClients: number;
  maxConnectionsPerIp: number;
  highWaterMarkBytes: number;
  frameTimeoutMs: number;
  maxPartialFrameBytesPerHost: number;
  maxPartialFrameBytes: number;
  maxPairsPerHost: number;
  maxPairs: number;
  maxPendingRequests: number;
  maxBoundPorts: number;
  maxQueuedBytes: number;
  slowConsumerTimeoutMs: number;
  ipv6PrefixLength: number;
  maxLogFieldChars: number;
  datagramRate: number;
  datagramBurst: number;
  datagramByteRate: number;
  datagramQueueBytes: number;
}

export function resolveRelayOptions(options: RelayOptions, silent: () => Logger): ResolvedRelayOptions {
  return {
    host: options.host ?? DEFAULT_HOST,
    port: options.port ?? DEFAULT_PORT,
    store: options.store,
    identityMode: options.identityMode ?? DEFAULT_IDENTITY_MODE,
    remote: options.remote,
    logger: options.logger ?? silent(),
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS,
    helloTimeoutMs: options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
    tlsHandshakeTimeoutMs: options.tlsHandshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    maxSocketsPerClient: options.maxSocketsPerClient ?? DEFAULT_MAX_SOCKETS_PER_CLIENT,
    maxPendingRequestsPerClient: options.maxPendingRequestsPerClient ?? DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT,
    maxClients: options.maxClients ?? DEFAULT_MAX_CLIENTS,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP,
    highWaterMarkBytes: options.highWaterMarkBytes ?? DEFAULT_HIGH_WATER_MARK_BYTES,
    frameTimeoutMs: options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS,
    maxPartialFrameBytesPerHost: options.maxPartialFrameBytesPerHost ?? DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST,
    maxPartialFrameBytes: options.maxPartialFrameBytes ?? DEFAULT_MAX_PARTIAL_FRAME_BYTES,
    maxPairsPerHost: options.maxPairsPerHost ?? DEFAULT_MAX_PAIRS_PER_HOST,
    maxPairs: options.maxPairs ?? DEFAULT_MAX_PAIRS,
    maxPendingRequests: options.maxPendingRequests ?? DEFAULT_MAX_PENDING_REQUESTS,
    maxBoundPorts: options.maxBoundPorts ?? DEFAULT_MAX_BOUND_PORTS,
    maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
    // 0 (the CLI's default) means the same as unset.
    slowConsumerTimeoutMs: options.slowConsumerTimeoutMs || (options.keepaliveTimeoutMs ?? DEFAULT_KEEPALIVE_TIMEOUT_MS),
    ipv6PrefixLength: options.ipv6PrefixLength ?? DEFAULT_IPV6_PREFIX_LENGTH,
    maxLogFieldChars: options.maxLogFieldChars ?? DEFAULT_MAX_LOG_FIELD_CHARS,
    datagramRate: options.datagramRate ?? DEFAULT_DATAGRAM_RATE_PPS,
    datagramBurst: options.datagramBurst ?? DEFAULT_DATAGRAM_BURST,
    datagramByteRate: options.datagramByteRate ?? DEFAULT_DATAGRAM_BYTE_RATE,
    datagramQueueBytes: options.datagramQueueBytes ?? DEFAULT_DATAGRAM_QUEUE_BYTES,
    inspect: options.inspect,
    clock: options.clock ?? SYSTEM_CLOCK,
    websocket: options.websocket,
  };
}
