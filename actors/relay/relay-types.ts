/** The relay's public face: the Relay handle, its status() snapshot and their constants. */
import type { Duplex } from 'node:stream';
import type { RelayBus } from './relay-events.ts';
import type { RelayLimits } from './relay-options.ts';
import type { RelayCounters } from './counters.ts';
import type { RecentClose } from './recent-closes.ts';
import type { RelayTlsOptions } from './tls.ts';

/** After an Error packet or at shutdown, how long a peer has to close before the socket is destroyed. */
export const CLOSE_LINGER_MS = 1_000;

/**
 * Clients and pairs listed by `status()` when no limit is asked for. A status costs time on the
 * event loop in proportion to what it lists (issue 9: 131k pairs took 0.62 s), so lists are capped and
 * paged; the counts in `totals` are always complete.
 */
export const DEFAULT_STATUS_LIST_LIMIT = 100;
/** Ports listed per client in `status()`: a client may bind up to maxSocketsPerClient (1024). */
export const STATUS_PORTS_LIMIT = 32;

/** One client in status(). */
export interface ClientStatus {
  id: number;
  virtualIp: string | null;
  realIp: string;
  connectedAt: number;
  state: string;
  bytesIn: number;
  bytesOut: number;
  sockets: number;
  /** Its bound ports, the first STATUS_PORTS_LIMIT of them (`portCount` counts them all). */
  ports: number[];
  portCount: number;
  /** True while the relay is not reading this client (a destination it feeds is full). */
  paused: boolean;
  /** Bytes queued in the relay for this client. */
  queuedBytes: number;
}

/** One socket pair in status(). */
export interface PairStatus {
  id: number;
  a: string;
  b: string;
  state: string;
  openedAt: number;
  bytesAToB: number;
  bytesBToA: number;
}

/** Which page of clients and pairs `status()` lists. */
export interface StatusQuery {
  /** Most entries of each list (`Infinity` for all). @default DEFAULT_STATUS_LIST_LIMIT (100) */
  limit?: number;
  /** Entries of each list skipped first, in connection / opening order. @default 0 */
  offset?: number;
}

/** A JSON-able snapshot of the relay. */
export interface RelayStatus {
  host: string;
  port: number;
  startedAt: number;
  uptimeMs: number;
  /** At most `list.limit` clients from `list.offset`, in the order they connected. */
  clients: ClientStatus[];
  /** At most `list.limit` socket pairs from `list.offset`, in the order they were requested. */
  pairs: PairStatus[];
  /** The page the lists hold, and whether entries exist beyond it. */
  list: { limit: number | null; offset: number; truncated: { clients: boolean; pairs: boolean } };
  recentCloses: RecentClose[];
  totals: RelayCounters & {
    clientsConnected: number;
    hosts: number;
    /** Pairs past their handshake. */
    pairsActive: number;
    /** Pairs held by the relay, opening ones included (the length of the full pair list). */
    pairsLive: number;
    pendingRequests: number;
    storeEntries: number;
  };
  limits: RelayLimits;
}

/** A running relay. */
export interface Relay {
  /** The address it listens on. */
  readonly host: string;
  /** The port it listens on (the real one when started with port 0): TLS when it has a certificate. */
  readonly port: number;
  /** The plain-TCP port it also serves beside TLS (`plaintextPort`), or undefined. */
  readonly plaintextPort: number | undefined;
  /** `sha256:AB:…` of the certificate new TLS connections get; undefined when it serves plain TCP only. */
  readonly tlsFingerprint: string | undefined;
  /**
   * Replaces the key and certificate for new connections (open ones keep theirs) and returns the
   * new fingerprint. Throws, keeping the current ones, when they cannot be read or do not match,
   * or when the relay serves plain TCP only.
   */
  setTls(material: RelayTlsOptions): string;
  /**
   * The WebSocket port, when started with `websocket` (its URL ends in /alphanet). `tls` is true
   * when it serves wss (the relay has a certificate: the same one as its TCP port), and the URL
   * then starts with `wss://`.
   */
  readonly websocket: { readonly host: string; readonly port: number; readonly url: string; readonly tls: boolean } | undefined;
  /** Set-up and tear-down events, one emitter per relay. */
  readonly bus: RelayBus;
  /** Data-path counters, read live. */
  readonly counters: Readonly<RelayCounters>;
  /** Counts, limits, recent closes and one page of clients and pairs (capped: see StatusQuery). */
  status(query?: StatusQuery): RelayStatus;
  /** Stops accepting, tells clients (SocketClosed RelayShutdown, Error RelayShuttingDown), flushes the store. */
  close(): Promise<void>;
  /**
   * Admits a client connection over a stream that is not a TCP socket, speaking as `realIp` (a
   * cluster's stand-in for another relay's client, docs/CLUSTER.md). Its id, or undefined if refused.
   *
   * `publicKey` is the identity key the client's own relay verified at its Hello (§2a), vouched for
   * by that relay: the stand-in is not challenged, its key is announced to its peers (PeerKey) and,
   * in key mode, decides its virtual IP. Only code in this process can call this; a network client
   * always proves its key itself (docs/SECURITY.md "Across the relays of a cluster").
   */
  admitStream(stream: Duplex, realIp: string, publicKey?: Uint8Array): number | undefined;
  /**
   * Who holds `address` here: the real IP and proven key (if any) of the connection bound to its
   * port, else of one connection of its virtual host; undefined when the host is not here. Cluster
   * routing carries it to the other relays, whose stand-ins then speak with this key.
   */
  identityAt(address: { ip: number; port: number }): { realIp: string; publicKey: Uint8Array | undefined } | undefined;
}
