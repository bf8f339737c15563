/**
 * The relay: one TCP server, one relay-connection actor per client connection and one
 * socket-pair actor per virtual socket connection, all independent root actors kept in Maps
 * (spawnChild under one parent slows sharply past a few thousand children).
 *
 * Each TCP socket has one owner (its ClientConn here) and one write path, `#write`, which
 * watches the destination's queue and pauses the sources that feed it (docs/PROTOCOL.md §7).
 * ArbitraryData and WindowUpdate never reach a machine: a Map lookup, a sender check, a
 * window count and a write of the received frame bytes unchanged. A data frame for a destination
 * at its mark is held in its source's reader before it is written (`#mustHold`).
 *
 * Everything a client can make the relay hold is bounded (docs/RELAY.md "Bounds", issue 9):
 * bytes of incomplete frames per host and relay-wide (`#afterRead`), the time a frame may take
 * (the sweep), pairs, pending requests and bound ports, queued bytes per destination and
 * relay-wide. Per-host counts use limits.ts's host key (IPv6 by prefix).
 */
import net from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { createActor, fromPromise, type Actor } from 'xstate';
import {
  BindStatus,
  CLOSE_REASON_NAMES,
  CloseReason,
  ConnectionStatus,
  ErrorCode,
  FAILURE_REASON_NAMES,
  FailureReason,
  INITIAL_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  PACKET_TYPE_NAMES,
  PROTOCOL_VERSION,
  PacketType,
  SocketStatus,
  decodeFrame,
  encodePacket,
  formatAddress,
  formatIpv4,
  normaliseRealIp,
  readConnectionId,
  ProtocolError,
  type Packet,
  type PacketOf,
  type WireAddress,
} from '../../protocol/index.ts';
import {
  relayConnectionMachine,
  type AllocationResult,
  type RelayConnectionErrorName,
} from '../../machines/relay-connection.machine.ts';
import { socketPairMachine, type PairCloseReason, type PairEnd } from '../../machines/socket-pair.machine.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { FrameReader } from './frame-reader.ts';
import { PortAllocator } from './port-allocator.ts';
import { Tally, boundedText, hostKey } from './limits.ts';
import { WindowBudget } from './window-budget.ts';
import { resolveRelayOptions, type RelayLimits, type RelayOptions, type ResolvedRelayOptions } from './relay-options.ts';
import type { HandshakeCompletedEvent, RelayBus, RelayBusEvents } from './relay-events.ts';

/** Recent closes kept for status(). */
export const RECENT_CLOSES_LIMIT = 100;
/** After an Error packet or at shutdown, how long a peer has to close before the socket is destroyed. */
export const CLOSE_LINGER_MS = 1_000;

/**
 * Largest frame accepted before the relay has answered Hello (§2). Hello is 11 bytes; anything
 * larger from a connection that has not said who it is would only make the relay allocate.
 */
export const PRE_HELLO_MAX_FRAME_BYTES = 64;
/** Bounds of the relay-wide keepalive/idle sweep period. */
const MIN_SWEEP_MS = 10;
const MAX_SWEEP_MS = 1_000;
const UINT32 = 0x1_0000_0000;

type RelayConnectionActor = Actor<typeof relayConnectionMachine>;
type SocketPairActor = Actor<typeof socketPairMachine>;

interface VirtualHost {
  ip: number;
  ipText: string;
  conns: Set<ClientConn>;
  ports: Map<number, ClientConn>;
  /** Ephemeral ports (§5), made on the host's first bind in the range. */
  ephemeral: PortAllocator | undefined;
}

interface ClientConn {
  id: number;
  socket: net.Socket;
  realIp: string;
  /** What per-host limits count under: the real IP, or its IPv6 prefix (limits.ts). */
  hostKey: string;
  decoder: FrameReader;
  /** The reader's buffered bytes as last counted into the per-host and relay-wide totals. */
  partialBytes: number;
  /** When the frame under way started arriving (0: none), for the frame timeout. */
  frameSince: number;
  /** The reader's completed-frame count when frameSince was last judged. */
  framesSeen: number;
  /** Not read because its host's or the relay's incomplete-frame bytes are over budget. */
  budgetWait: boolean;
  /** The queue length last counted into counters.queuedBytes. */
  queuedSeen: number;
  /** Bytes it had taken off its socket (bytesOut − queue) when that last moved, and when. */
  progressMark: number;
  progressAt: number;
  actor: RelayConnectionActor;
  host: VirtualHost | undefined;
  ready: boolean;
  closed: boolean;
  connectedAt: number;
  lastSeen: number;
  lastPingAt: number;
  nextNonce: number;
  bytesIn: number;
  bytesOut: number;
  ports: Set<number>;
  pairs: Set<Pair>;
  /** Requests from this client waiting on a target. */
  pendingOut: number;
  /** Status requests forwarded to this client, to fail if it leaves. */
  pendingIn: Set<PendingStatus>;
  /** Destinations whose full queues paused this source (§7). Allocated on first use. */
  blockedBy: Set<ClientConn> | undefined;
  /** Sources paused because this destination's queue is full. */
  blockedSources: Set<ClientConn> | undefined;
  corked: boolean;
}

interface Pair {
  id: number;
  a: ClientConn;
  b: ClientConn;
  aAddress: string;
  bAddress: string;
  actor: SocketPairActor;
  open: boolean;
  aEnded: boolean;
  bEnded: boolean;
  /** Payload bytes each sender may still send (§7 window), as the sender counts it. */
  creditAToB: number;
  creditBToA: number;
  bytesAToB: number;
  bytesBToA: number;
  requestedAt: number;
  openedAt: number;
  lastActivity: number;
  originRequestId: number;
  /** The relay's request id while the target has not answered. */
  pendingRelayId: number | undefined;
  responseStatus: number;
  state: string;
}

interface PendingStatus {
  kind: 'status';
  relayId: number;
  origin: ClientConn;
  originRequestId: number;
  target: ClientConn;
  source: string;
  destination: string;
  startedAt: number;
  timer: NodeJS.Timeout;
}

interface PendingConnect {
  kind: 'connect';
  pair: Pair;
}

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

/** One entry of the recent-closes ring. */
export interface RecentClose {
  kind: 'client' | 'pair';
  id: number;
  /** Client: "realIp → virtualIp"; pair: "a ↔ b". */
  label: string;
  reason: string;
  at: number;
  durationMs: number;
  /** Client: bytes in / out; pair: bytes a→b / b→a. */
  bytes: [number, number];
}

/** Plain counters, incremented on the data path (never events). */
export interface RelayCounters {
  framesIn: number;
  bytesIn: number;
  framesRelayed: number;
  bytesRelayed: number;
  clientsTotal: number;
  clientsRejected: number;
  pairsTotal: number;
  requestsTotal: number;
  requestsFailed: number;
  protocolErrors: number;
  keepaliveTimeouts: number;
  idleTimeouts: number;
  backpressurePauses: number;
  /** Clients dropped for holding others back while reading nothing (§7). */
  slowConsumers: number;
  /** Connections closed for not completing a frame within the frame timeout. */
  frameTimeouts: number;
  /** Times a connection was not read because incomplete-frame bytes were over budget. */
  partialFramePauses: number;
  /** Requests, binds and connections refused by a bound, by the bound's option name. */
  limitRefusals: Record<string, number>;
  /** Client-supplied log fields cut at maxLogFieldChars. */
  logFieldsTruncated: number;
  /** Now: bytes of incomplete or held frames relay-wide. */
  partialFrameBytes: number;
  /** Now: bytes queued for all destinations (as last seen; drains are counted when seen). */
  queuedBytes: number;
  /** Now: socket connections (requested or open). */
  pairCount: number;
  /** Now: requests waiting on targets. */
  pendingCount: number;
  /** Now: bound ports. */
  boundPortCount: number;
}

/**
 * Clients and pairs listed by `status()` when no limit is asked for. A status costs time on the
 * event loop in proportion to what it lists (issue 9: 131k pairs took 0.62 s), so lists are capped and
 * paged; the counts in `totals` are always complete.
 */
export const DEFAULT_STATUS_LIST_LIMIT = 100;
/** Ports listed per client in `status()`: a client may bind up to maxSocketsPerClient (1024). */
export const STATUS_PORTS_LIMIT = 32;

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
  /** The port it listens on (the real one when started with port 0). */
  readonly port: number;
  /** Set-up and tear-down events, one emitter per relay. */
  readonly bus: RelayBus;
  /** Data-path counters, read live. */
  readonly counters: Readonly<RelayCounters>;
  /** Counts, limits, recent closes and one page of clients and pairs (capped: see StatusQuery). */
  status(query?: StatusQuery): RelayStatus;
  /** Stops accepting, tells clients (SocketClosed RelayShutdown, Error RelayShuttingDown), flushes the store. */
  close(): Promise<void>;
}

const PAIR_END_NAMES = { a: 'a', b: 'b' } as const;

function closeReasonName(reason: number): PairCloseReason {
  const name = CLOSE_REASON_NAMES[reason];
  return (name ?? 'Error') as PairCloseReason;
}

function protocolErrorName(error: ProtocolError): RelayConnectionErrorName {
  switch (error.code) {
    case 'ERR_FRAME_TOO_LARGE':
      return 'FrameTooLarge';
    case 'ERR_UNKNOWN_PACKET_TYPE':
      return 'UnknownPacketType';
    default:
      return 'MalformedFrame';
  }
}

function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const [key, inner] = Object.entries(value)[0] ?? ['?', undefined];
    return inner === undefined ? key : `${key}.${stateName(inner)}`;
  }
  return String(value);
}

/** Fatal conditions caused by what a client sent (reported as client.protocolError). */
const PROTOCOL_ERRORS: ReadonlySet<RelayConnectionErrorName> = new Set([
  'UnsupportedVersion',
  'MalformedFrame',
  'FrameTooLarge',
  'UnknownPacketType',
  'HelloTimeout',
  'UnexpectedPacket',
  'FrameTimeout',
]);

/** Packets only the relay sends; a client sending one breaks §9 UnexpectedPacket. */
const RELAY_ONLY: ReadonlySet<number> = new Set([PacketType.VirtualIp, PacketType.BindResponse, PacketType.RequestFailed]);

class RelayServer implements Relay {
  readonly bus: RelayBus = new EventEmitter<RelayBusEvents>();
  readonly counters: RelayCounters = {
    framesIn: 0,
    bytesIn: 0,
    framesRelayed: 0,
    bytesRelayed: 0,
    clientsTotal: 0,
    clientsRejected: 0,
    pairsTotal: 0,
    requestsTotal: 0,
    requestsFailed: 0,
    protocolErrors: 0,
    keepaliveTimeouts: 0,
    idleTimeouts: 0,
    backpressurePauses: 0,
    slowConsumers: 0,
    frameTimeouts: 0,
    partialFramePauses: 0,
    limitRefusals: {},
    logFieldsTruncated: 0,
    partialFrameBytes: 0,
    queuedBytes: 0,
    pairCount: 0,
    pendingCount: 0,
    boundPortCount: 0,
  };
  host: string;
  port = 0;

  readonly #options: ResolvedRelayOptions;
  readonly #log: Logger;
  readonly #server: net.Server;
  readonly #conns = new Map<number, ClientConn>();
  readonly #hosts = new Map<number, VirtualHost>();
  readonly #pairs = new Map<number, Pair>();
  /** Credit above the initial windows, relay-wide (§7). */
  readonly #windowBudget = new WindowBudget();
  readonly #pending = new Map<number, PendingStatus | PendingConnect>();
  readonly #sockets = new Set<net.Socket>();
  /** Live TCP connections per host key (real IP or IPv6 prefix), for maxConnectionsPerIp. */
  readonly #perIp = new Tally();
  /** Incomplete-frame bytes per host key. */
  readonly #partialPerHost = new Tally();
  /** Socket connections per requesting host key. */
  readonly #pairsPerHost = new Tally();
  /** Connections not read until incomplete-frame bytes fall below budget, oldest first. */
  readonly #budgetWaiters = new Set<ClientConn>();

  readonly #recent: RecentClose[] = [];
  readonly #connMachine;
  readonly #pairMachine;
  readonly #startedAt = Date.now();
  #nextClientId = 1;
  #nextConnectionId = 1;
  #nextRequestId = 1;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** Destinations corked while one received chunk is processed; uncorked together after it. */
  #corked: ClientConn[] = [];
  #inChunk = false;
  /**
   * The client whose bytes are being handled: replies and forwards it causes count against its
   * own backpressure, so a client that floods requests and reads no answers is paused (§7).
   */
  #source: ClientConn | undefined;
  #now = Date.now();

  constructor(options: ResolvedRelayOptions) {
    this.#options = options;
    this.host = options.host;
    this.#log = options.logger;
    this.#server = net.createServer({ noDelay: true }, (socket) => this.#serverOnConnection(socket));
    this.#connMachine = this.#provideConnectionMachine();
    this.#pairMachine = this.#providePairMachine();
  }

  async listen(): Promise<void> {
    const server = this.#server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.#options.host, port: this.#options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.#log.error({ err: error }, 'server error'));
    const address = server.address() as net.AddressInfo;
    this.port = address.port;
    const o = this.#options;
    const sweepMs = Math.max(
      MIN_SWEEP_MS,
      Math.min(MAX_SWEEP_MS, o.keepaliveIntervalMs / 2, o.keepaliveTimeoutMs / 4, o.idleTimeoutMs > 0 ? o.idleTimeoutMs / 4 : Infinity),
    );
    // One relay-wide sweep instead of timers per client: 10,000 idle clients cost one interval.
    this.#sweepTimer = setInterval(() => this.#sweep(), sweepMs);
    this.#sweepTimer.unref();
    this.#log.info({ host: this.host, port: this.port, sweepMs }, 'relay listening');
    this.bus.emit('relay.listening', { host: this.host, port: this.port });
  }

  // ---------------------------------------------------------------- machines and their effects

  #provideConnectionMachine() {
    const o = this.#options;
    return relayConnectionMachine.provide({
      delays: { helloTimeout: o.helloTimeoutMs },
      actors: {
        allocateAddress: fromPromise<AllocationResult, { id: number }>(async ({ input }) => {
          const conn = this.#conns.get(input.id);
          if (conn === undefined) return { ok: false, error: 'StoreFailure', message: 'connection gone' };
          try {
            // §2.2: resolves only once the mapping is fsynced.
            return { ok: true, virtualIp: await o.store.findOrAllocate(conn.realIp) };
          } catch (error) {
            const code = (error as { code?: unknown }).code;
            this.#log.error({ err: error, clientId: conn.id, realIp: conn.realIp }, 'address store failed');
            return code === 'ERR_ADDRESS_SPACE_EXHAUSTED'
              ? { ok: false, error: 'AddressSpaceExhausted', message: (error as Error).message }
              : { ok: false, error: 'StoreFailure', message: 'the address store could not record the mapping' };
          }
        }),
      },
      actions: {
        sendVirtualIp: ({ context }, { virtualIp }) => {
          const conn = this.#conns.get(context.id);
          if (conn === undefined || conn.closed) return;
          this.#register(conn, virtualIp);
        },
        sendError: ({ context }, { error, message }) => {
          const conn = this.#conns.get(context.id);
          if (conn === undefined || conn.closed) return;
          conn.decoder.stop();
          // Reported here, where both the actor's and the machine's findings pass.
          if (PROTOCOL_ERRORS.has(error)) {
            this.counters.protocolErrors++;
            this.#log.warn({ clientId: conn.id, realIp: conn.realIp, code: error, reason: message }, 'protocol error, disconnecting');
            this.bus.emit('client.protocolError', { clientId: conn.id, realIp: conn.realIp, code: error, message });
          }
          this.#writeControl(conn, { type: PacketType.Error, code: ErrorCode[error], message });
        },
        closeTransport: ({ context }) => {
          const conn = this.#conns.get(context.id);
          if (conn !== undefined) this.#endSocket(conn.socket);
        },
        release: ({ context }) => {
          const conn = this.#conns.get(context.id);
          if (conn !== undefined) this.#release(conn, context.endReason ?? 'TransportClosed', context.endMessage ?? '');
        },
      },
    });
  }

  #providePairMachine() {
    return socketPairMachine.provide({
      delays: { requestTimeout: this.#options.requestTimeoutMs },
      actions: {
        activate: ({ context }) => {
          const pair = this.#pairs.get(context.id);
          if (pair === undefined) return;
          pair.open = true;
          pair.openedAt = pair.lastActivity = Date.now();
          this.bus.emit('pair.opened', { id: pair.id, a: pair.aAddress, b: pair.bAddress, at: pair.openedAt });
        },
        forwardResponse: ({ context }) => {
          const pair = this.#pairs.get(context.id);
          if (pair === undefined) return;
          this.#writeControl(pair.a, {
            type: PacketType.SocketConnectionResponse,
            requestId: pair.originRequestId,
            connectionId: pair.responseStatus === ConnectionStatus.Accepted ? pair.id : 0,
            status: pair.responseStatus,
          });
        },
        failRequest: ({ context }, { reason }) => {
          const pair = this.#pairs.get(context.id);
          if (pair === undefined) return;
          this.#settlePending(pair);
          this.#requestFailed(pair.a, pair.originRequestId, FailureReason[reason], 'connect');
          this.#handshake({
            kind: 'connect',
            clientId: pair.a.id,
            source: pair.aAddress,
            destination: pair.bAddress,
            outcome: reason === 'Timeout' ? 'timeout' : 'target-disconnected',
            durationMs: Date.now() - pair.requestedAt,
          });
        },
        forwardEnd: ({ context }, { to }) => {
          const pair = this.#pairs.get(context.id);
          if (pair === undefined) return;
          if (to === 'b') pair.aEnded = true;
          else pair.bEnded = true;
          pair.lastActivity = this.#now;
          this.#writeControl(pair[to], { type: PacketType.SocketEnd, connectionId: pair.id });
        },
        notify: ({ context }, { to, reason }) => {
          const pair = this.#pairs.get(context.id);
          if (pair === undefined) return;
          for (const end of to) {
            this.#writeControl(pair[PAIR_END_NAMES[end]], {
              type: PacketType.SocketClosed,
              connectionId: pair.id,
              reason: CloseReason[reason],
            });
          }
        },
        release: ({ context }) => {
          const pair = this.#pairs.get(context.id);
          if (pair !== undefined) this.#releasePair(pair, context.endReason ?? 'Error');
        },
      },
    });
  }

  // ---------------------------------------------------------------- connections

  #serverOnConnection(socket: net.Socket): void {
    const o = this.#options;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', (error) => this.#log.debug({ err: error }, 'socket error'));
    const realIp = normaliseRealIp(socket.remoteAddress ?? '');
    const key = hostKey(realIp, o.ipv6PrefixLength);
    const fromIp = this.#perIp.get(key);
    let refusal: string | undefined;
    let limit: 'maxClients' | 'maxConnectionsPerIp' | undefined;
    if (this.#closing !== undefined) refusal = 'the relay is stopping';
    else if (realIp === '') refusal = 'the connection has no remote address';
    else if (this.#conns.size >= o.maxClients) {
      refusal = `the relay is full (${o.maxClients} clients)`;
      limit = 'maxClients';
    } else if (fromIp >= o.maxConnectionsPerIp) {
      refusal = `${key === realIp ? realIp : `${realIp} (counted as ${key})`} already has ${fromIp} connections, the most one IP may have`;
      limit = 'maxConnectionsPerIp';
    }
    if (refusal !== undefined) {
      this.counters.clientsRejected++;
      if (limit !== undefined) this.#refused(limit);
      const code = this.#closing !== undefined ? ErrorCode.RelayShuttingDown : ErrorCode.TooManyClients;
      this.#log.warn({ realIp, code, reason: refusal }, 'client refused');
      socket.end(encodePacket({ type: PacketType.Error, code, message: refusal }));
      setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
      return;
    }
    this.#perIp.add(key, 1);
    socket.once('close', () => this.#perIp.add(key, -1));
    socket.setNoDelay(true);
    const id = this.#nextClientId++;
    const now = Date.now();
    const conn: ClientConn = {
      id,
      socket,
      realIp,
      hostKey: key,
      decoder: undefined as unknown as FrameReader,
      partialBytes: 0,
      frameSince: 0,
      framesSeen: 0,
      budgetWait: false,
      queuedSeen: 0,
      progressMark: 0,
      progressAt: 0,
      actor: undefined as unknown as RelayConnectionActor,
      host: undefined,
      ready: false,
      closed: false,
      connectedAt: now,
      lastSeen: now,
      lastPingAt: now,
      nextNonce: 1,
      bytesIn: 0,
      bytesOut: 0,
      ports: new Set(),
      pairs: new Set(),
      pendingOut: 0,
      pendingIn: new Set(),
      blockedBy: undefined,
      blockedSources: undefined,
      corked: false,
    };
    conn.decoder = new FrameReader(
      {
        frame: (type, frame) => this.#onFrame(conn, type, frame),
        dataPieces: (connectionId, frameBytes, pieces) => this.#onDataPieces(conn, connectionId, frameBytes, pieces),
      },
      { maxFrameBytes: PRE_HELLO_MAX_FRAME_BYTES },
    );
    this.#conns.set(id, conn);
    this.counters.clientsTotal++;
    conn.actor = createActor(this.#connMachine, {
      input: { id, supportedVersions: [PROTOCOL_VERSION] },
      inspect: o.inspect,
    });
    socket.on('data', (chunk: Buffer) => this.#socketOnData(conn, chunk));
    socket.on('drain', () => this.#socketOnDrain(conn));
    socket.once('close', () => conn.actor.send({ type: 'transport.closed' }));
    this.#log.debug({ clientId: id, realIp }, 'tcp connected');
    conn.actor.start();
  }

  #socketOnData(conn: ClientConn, chunk: Buffer): void {
    if (conn.closed) return;
    this.#now = Date.now();
    // Life (§4) is a completed frame (#onFrame), not a byte: a trickle must not look alive.
    conn.bytesIn += chunk.length;
    this.counters.bytesIn += chunk.length;
    this.#feed(conn, () => conn.decoder.push(chunk));
  }

  /**
   * Runs `work` as the handling of bytes from `conn`: replies and forwards count against its
   * backpressure (§7), and writes to each destination leave in one writev. Re-entrant: a source
   * resumed while another's chunk is handled shares that chunk's corking.
   */
  #feed(conn: ClientConn, work: () => ProtocolError | undefined): void {
    const nested = this.#inChunk;
    const outer = this.#source;
    this.#inChunk = true;
    this.#source = conn;
    let error: ProtocolError | undefined;
    try {
      error = work();
    } finally {
      this.#source = outer;
      if (!nested) {
        this.#inChunk = false;
        // Writes to each destination made while handling this chunk leave in one writev.
        const corked = this.#corked;
        if (corked.length > 0) {
          this.#corked = [];
          for (const dst of corked) {
            dst.corked = false;
            dst.socket.uncork();
          }
        }
      }
    }
    this.#afterRead(conn);
    if (error !== undefined) this.#protocolError(conn, protocolErrorName(error), error.message);
  }

  /** Counts the reader's buffered bytes into the per-host and relay-wide totals. */
  #countPartial(conn: ClientConn): void {
    const buffered = conn.decoder.bufferedBytes;
    const delta = buffered - conn.partialBytes;
    if (delta === 0) return;
    conn.partialBytes = buffered;
    this.counters.partialFrameBytes += delta;
    this.#partialPerHost.add(conn.hostKey, delta);
  }

  /**
   * After bytes were handled: counts what the reader keeps, notes whether the frame under way
   * is new (for the frame timeout), and stops reading a connection whose host or the relay
   * is over its incomplete-frame budget (docs/RELAY.md "Bounds").
   */
  #afterRead(conn: ClientConn): void {
    this.#countPartial(conn);
    const reader = conn.decoder;
    if (!reader.incomplete) conn.frameSince = 0;
    else if (conn.frameSince === 0 || reader.frames !== conn.framesSeen) conn.frameSince = this.#now;
    conn.framesSeen = reader.frames;
    if (conn.closed || conn.budgetWait || conn.partialBytes === 0 || !this.#overPartialBudget(conn, 0)) return;
    conn.budgetWait = true;
    this.#budgetWaiters.add(conn);
    this.counters.partialFramePauses++;
    conn.socket.pause();
  }

  /**
   * True when the host's incomplete-frame bytes, less `own`, exceed its budget, or when the
   * relay's exceed theirs and this host holds more than an equal share of them. The share keeps
   * hosts that filled the relay-wide budget (each under its own) from holding back, and timing
   * out, a client whose one big frame spans a few reads.
   */
  #overPartialBudget(conn: ClientConn, own: number): boolean {
    const o = this.#options;
    const host = this.#partialPerHost.get(conn.hostKey) - own;
    if (host > o.maxPartialFrameBytesPerHost) return true;
    if (this.counters.partialFrameBytes - own <= o.maxPartialFrameBytes) return false;
    return host > o.maxPartialFrameBytes / Math.max(1, this.#partialPerHost.size);
  }

  /** True while the relay holds `conn` back for a destination's sake (§7): its silence is ours. */
  #flowBlocked(conn: ClientConn): boolean {
    return conn.blockedBy !== undefined || conn.decoder.holding;
  }

  /**
   * Reads `conn` again once nothing holds it back: first the frame it held and the bytes after
   * it (which may hold it again), then its socket.
   */
  #resumeReading(conn: ClientConn, afterFlowPause = true): void {
    if (conn.closed) return;
    if (conn.blockedBy === undefined) {
      this.#now = Date.now();
      this.#feed(conn, () => conn.decoder.resume());
    }
    if (conn.closed || this.#flowBlocked(conn) || conn.budgetWait) return;
    // Its silence and its stalled frame while held back were ours, not its own (§4).
    conn.lastSeen = Date.now();
    if (afterFlowPause && conn.frameSince > 0) conn.frameSince = conn.lastSeen;
    conn.socket.resume();
  }

  /** Counts a refusal by a bound, for /metrics. */
  #refused(limit: string): void {
    this.counters.limitRefusals[limit] = (this.counters.limitRefusals[limit] ?? 0) + 1;
  }

  #protocolError(conn: ClientConn, error: RelayConnectionErrorName, message: string): void {
    if (conn.closed) return;
    conn.decoder.stop();
    conn.actor.send({ type: 'protocol.error', error, message });
  }

  #unexpected(conn: ClientConn, type: number): void {
    const name = PACKET_TYPE_NAMES[type] ?? `type ${type}`;
    this.#protocolError(conn, 'UnexpectedPacket', `unexpected ${name}`);
  }

  #onFrame(conn: ClientConn, type: number, frame: Uint8Array): boolean | void {
    this.counters.framesIn++;
    conn.lastSeen = this.#now;
    // The data path (§7): no decode, no machine.
    if (type === PacketType.ArbitraryData) {
      if (!conn.ready) return this.#unexpected(conn, type);
      if (frame.length < 9) return this.#protocolError(conn, 'MalformedFrame', 'ArbitraryData shorter than its header');
      return this.#relayData(conn, readConnectionId(frame), frame.length, frame);
    }
    if (type === PacketType.WindowUpdate) {
      if (!conn.ready) return this.#unexpected(conn, type);
      if (frame.length !== 13) return this.#protocolError(conn, 'MalformedFrame', 'WindowUpdate body is not 8 bytes');
      return this.#relayWindowUpdate(conn, frame);
    }
    const packet = decodeFrame(frame);
    if (packet instanceof ProtocolError) return this.#protocolError(conn, protocolErrorName(packet), packet.message);
    if (packet.type === PacketType.Hello) {
      conn.actor.send({ type: 'hello.received', version: packet.version });
      return;
    }
    if (!conn.ready || RELAY_ONLY.has(packet.type)) return this.#unexpected(conn, packet.type);
    this.#onControl(conn, packet);
  }

  /** An ArbitraryData frame that spanned TCP chunks, as the slices it arrived in (frame-reader.ts). */
  #onDataPieces(conn: ClientConn, connectionId: number, frameBytes: number, pieces: Uint8Array[]): boolean | void {
    this.counters.framesIn++;
    conn.lastSeen = this.#now;
    if (!conn.ready) return this.#unexpected(conn, PacketType.ArbitraryData);
    return this.#relayData(conn, connectionId, frameBytes, pieces);
  }

  #onControl(conn: ClientConn, packet: Packet): void {
    switch (packet.type) {
      case PacketType.Ping:
        this.#writeControl(conn, { type: PacketType.Pong, nonce: packet.nonce });
        return;
      case PacketType.Pong:
        return; // lastSeen already moved (§4: any frame is a sign of life)
      case PacketType.Error: {
        // The text is the client's: bounded before it reaches a log line (issue 9, finding 6).
        const message = boundedText(packet.message, this.#options.maxLogFieldChars);
        if (message.truncated) this.counters.logFieldsTruncated++;
        this.#log.info({ clientId: conn.id, code: packet.code, message: message.text }, 'client sent Error');
        conn.decoder.stop();
        this.#endSocket(conn.socket);
        return;
      }
      case PacketType.BindRequest:
        return this.#onBind(conn, packet);
      case PacketType.Unbind:
        return this.#onUnbind(conn, packet.port);
      case PacketType.SocketStatusRequest:
        return this.#onStatusRequest(conn, packet);
      case PacketType.SocketStatusResponse:
        return this.#onStatusResponse(conn, packet);
      case PacketType.SocketConnectionRequest:
        return this.#onConnectionRequest(conn, packet);
      case PacketType.SocketConnectionResponse:
        return this.#onConnectionResponse(conn, packet);
      case PacketType.SocketEnd:
        return this.#onSocketEnd(conn, packet.connectionId);
      case PacketType.SocketClosed:
        return this.#onSocketClosed(conn, packet.connectionId, packet.reason);
      default:
        return this.#unexpected(conn, packet.type);
    }
  }

  /** §2.2–2.3: the connection joins its virtual host and hears its address. */
  #register(conn: ClientConn, virtualIp: number): void {
    let host = this.#hosts.get(virtualIp);
    if (host === undefined) {
      host = { ip: virtualIp, ipText: formatIpv4(virtualIp), conns: new Set(), ports: new Map(), ephemeral: undefined };
      this.#hosts.set(virtualIp, host);
    }
    host.conns.add(conn);
    conn.host = host;
    conn.ready = true;
    conn.decoder.maxFrameBytes = this.#options.maxFrameBytes;
    conn.lastSeen = conn.lastPingAt = Date.now();
    const o = this.#options;
    this.#writeControl(conn, {
      type: PacketType.VirtualIp,
      version: PROTOCOL_VERSION,
      ip: virtualIp,
      keepaliveIntervalMs: o.keepaliveIntervalMs,
      keepaliveTimeoutMs: o.keepaliveTimeoutMs,
      maxFrameBytes: o.maxFrameBytes,
    });
    this.#log.info({ clientId: conn.id, realIp: conn.realIp, virtualIp: host.ipText }, 'client connected');
    this.bus.emit('client.connected', { id: conn.id, realIp: conn.realIp, virtualIp: host.ipText, at: conn.lastSeen });
  }

  /** Everything a connection held goes; each peer hears PeerDisconnected (§8). */
  #release(conn: ClientConn, reason: string, message: string): void {
    if (conn.closed) return;
    // Last-seen is recorded at Hello and again when a client leaves, so a client connected for
    // months is not "unseen" to `alphanet store reclaim` (at most one record per entry per day).
    if (conn.host !== undefined) this.#options.store.touch?.(conn.realIp);
    conn.closed = true;
    conn.ready = false;
    conn.decoder.stop();
    this.#countPartial(conn);
    this.#budgetWaiters.delete(conn);
    this.counters.queuedBytes -= conn.queuedSeen;
    conn.queuedSeen = 0;
    this.#conns.delete(conn.id);
    for (const pair of [...conn.pairs]) pair.actor.send({ type: 'end.left', end: pair.a === conn ? 'a' : 'b' });
    for (const entry of [...conn.pendingIn]) {
      this.#settleStatus(entry);
      this.#requestFailed(entry.origin, entry.originRequestId, FailureReason.TargetDisconnected, 'status');
    }
    const host = conn.host;
    if (host !== undefined) {
      for (const port of conn.ports) {
        if (host.ports.get(port) === conn) {
          host.ports.delete(port);
          host.ephemeral?.release(port);
          this.counters.boundPortCount--;
        }
      }
      host.conns.delete(conn);
      if (host.conns.size === 0) this.#hosts.delete(host.ip);
    }
    // A dead destination will never drain: let its sources read again.
    if (conn.blockedSources !== undefined) this.#socketOnDrain(conn);
    if (conn.blockedBy !== undefined) {
      for (const dst of conn.blockedBy) dst.blockedSources?.delete(conn);
      conn.blockedBy = undefined;
    }
    if (!conn.socket.destroyed && reason === 'TransportClosed') conn.socket.destroy();
    const durationMs = Date.now() - conn.connectedAt;
    const virtualIp = host?.ipText;
    const level = reason === 'TransportClosed' || reason === 'RelayShuttingDown' ? 'info' : 'warn';
    this.#log[level]({ clientId: conn.id, realIp: conn.realIp, virtualIp, reason, durationMs }, 'client disconnected');
    this.#remember({
      kind: 'client',
      id: conn.id,
      label: `${conn.realIp} → ${virtualIp ?? '-'}`,
      reason,
      at: Date.now(),
      durationMs,
      bytes: [conn.bytesIn, conn.bytesOut],
    });
    this.bus.emit('client.disconnected', {
      id: conn.id,
      realIp: conn.realIp,
      virtualIp,
      reason,
      message,
      durationMs,
      bytesIn: conn.bytesIn,
      bytesOut: conn.bytesOut,
    });
  }

  #endSocket(socket: net.Socket): void {
    if (socket.destroyed) return;
    socket.end();
    // Read and discard until the peer closes, so its FIN is seen even if we had paused it.
    socket.resume();
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  // ---------------------------------------------------------------- write path

  /** The one write path for control packets. */
  #writeControl(conn: ClientConn, packet: Packet): void {
    this.#write(conn, encodePacket(packet), this.#source);
  }

  /**
   * Writes bytes to `dst`. When `src` feeds it and its queue passes the high-water mark, `src`
   * stops being read until `dst` drains (§7); bytes are never dropped or reordered.
   */
  #write(dst: ClientConn, bytes: Uint8Array | readonly Uint8Array[], src: ClientConn | undefined): void {
    const socket = dst.socket;
    if (dst.closed || !socket.writable) return;
    if (this.#inChunk && !dst.corked) {
      dst.corked = true;
      socket.cork();
      this.#corked.push(dst);
    }
    if (bytes instanceof Uint8Array) {
      socket.write(bytes);
      dst.bytesOut += bytes.length;
    } else {
      // A frame in slices leaves in one writev: corked above while a chunk is handled, else here.
      if (!dst.corked) socket.cork();
      for (const piece of bytes) {
        socket.write(piece);
        dst.bytesOut += piece.length;
      }
      if (!dst.corked) socket.uncork();
    }
    const queued = this.#countQueue(dst);
    if (src !== undefined && queued > this.#options.highWaterMarkBytes) this.#block(src, dst);
  }

  /** Counts `dst`'s queue into the relay-wide total (counters.queuedBytes) and returns it. */
  #countQueue(dst: ClientConn): number {
    const queued = dst.socket.writableLength;
    const delta = queued - dst.queuedSeen;
    if (delta !== 0) {
      dst.queuedSeen = queued;
      this.counters.queuedBytes += delta;
    }
    return queued;
  }

  /** `src` is not read until `dst` drains (§7). */
  #block(src: ClientConn, dst: ClientConn): void {
    if (dst.blockedSources === undefined) {
      dst.blockedSources = new Set();
      // Slow-consumer progress is measured from here (#sweep).
      dst.progressMark = dst.bytesOut - dst.socket.writableLength;
      dst.progressAt = this.#now;
    }
    dst.blockedSources.add(src);
    const blockedBy = (src.blockedBy ??= new Set());
    if (!blockedBy.has(dst)) {
      blockedBy.add(dst);
      if (blockedBy.size === 1) {
        this.counters.backpressurePauses++;
        src.socket.pause();
        this.bus.emit('flow.paused', { sourceId: src.id, destinationId: dst.id, queuedBytes: dst.socket.writableLength });
      }
    }
  }

  /**
   * Whether a data frame from `src` to `dst` must wait (the reader holds it) until `dst` drains:
   * `dst`'s queue is at its high-water mark, or all queues together are at maxQueuedBytes and
   * `dst` holds at least its fair share of that. Judged before the write, so 200 sources into one
   * receiver add at most one frame each past the mark, not a TCP read each (issue 9, finding 5).
   * A destination with a small queue (one that reads) is never held back for others' queues, so
   * stalled receivers filling the relay-wide budget do not stop everyone else.
   */
  #mustHold(src: ClientConn, dst: ClientConn): boolean {
    if (dst.closed || !dst.socket.writable) return false;
    const o = this.#options;
    const queued = this.#countQueue(dst);
    if (queued >= o.highWaterMarkBytes) {
      this.#block(src, dst);
      return true;
    }
    if (this.counters.queuedBytes >= o.maxQueuedBytes && queued >= o.maxQueuedBytes / Math.max(1, this.#conns.size)) {
      this.#refused('maxQueuedBytes');
      this.#block(src, dst);
      return true;
    }
    return false;
  }

  #socketOnDrain(dst: ClientConn): void {
    if (!dst.closed) this.#countQueue(dst);
    const sources = dst.blockedSources;
    if (sources === undefined) return;
    dst.blockedSources = undefined;
    for (const src of sources) {
      const blockedBy = src.blockedBy;
      if (blockedBy === undefined) continue;
      blockedBy.delete(dst);
      // A source fed several full destinations: it reads again only when all have drained.
      if (blockedBy.size === 0) {
        src.blockedBy = undefined;
        if (!src.closed) {
          this.#resumeReading(src);
          this.bus.emit('flow.resumed', { sourceId: src.id, destinationId: dst.id, queuedBytes: dst.socket.writableLength });
        }
      }
    }
  }

  // ---------------------------------------------------------------- data path (§7)

  /** Returns false when the frame must wait for its destination to drain (the reader holds it). */
  #relayData(src: ClientConn, id: number, frameBytes: number, frame: Uint8Array | readonly Uint8Array[]): boolean | void {
    const pair = this.#pairs.get(id);
    if (pair === undefined || !pair.open || (pair.a !== src && pair.b !== src)) {
      // Not forwarded: the sender is not an end of an active pair (§7).
      this.#writeControl(src, { type: PacketType.SocketClosed, connectionId: id, reason: CloseReason.ProtocolViolation });
      return;
    }
    // Before anything is counted: a held frame comes through here again when it is resumed.
    if (this.#mustHold(src, pair.a === src ? pair.b : pair.a)) {
      this.counters.framesIn--; // counted again when it is delivered again
      return false;
    }
    const payload = frameBytes - 9;
    let dst: ClientConn;
    let released: number;
    if (pair.a === src) {
      if (pair.aEnded) return void pair.actor.send({ type: 'violation', reason: 'ProtocolViolation' });
      if (pair.creditAToB < payload) return void pair.actor.send({ type: 'violation', reason: 'FlowControlViolation' });
      released = this.#windowBudget.spent(id, 0, pair.creditAToB, payload);
      pair.creditAToB += released - payload;
      pair.bytesAToB += payload;
      dst = pair.b;
    } else {
      if (pair.bEnded) return void pair.actor.send({ type: 'violation', reason: 'ProtocolViolation' });
      if (pair.creditBToA < payload) return void pair.actor.send({ type: 'violation', reason: 'FlowControlViolation' });
      released = this.#windowBudget.spent(id, 1, pair.creditBToA, payload);
      pair.creditBToA += released - payload;
      pair.bytesBToA += payload;
      dst = pair.a;
    }
    pair.lastActivity = this.#now;
    this.counters.framesRelayed++;
    this.counters.bytesRelayed += frameBytes;
    this.#write(dst, frame, src);
    // Credit the receiver granted while the budget was full, passed on now that data made room (§7).
    if (released > 0) this.#writeControl(src, { type: PacketType.WindowUpdate, connectionId: id, bytes: released });
  }

  #relayWindowUpdate(src: ClientConn, frame: Uint8Array): void {
    const id = readConnectionId(frame);
    const pair = this.#pairs.get(id);
    if (pair === undefined || !pair.open || (pair.a !== src && pair.b !== src)) {
      this.#writeControl(src, { type: PacketType.SocketClosed, connectionId: id, reason: CloseReason.ProtocolViolation });
      return;
    }
    const bytes = ((frame[9] << 24) | (frame[10] << 16) | (frame[11] << 8) | frame[12]) >>> 0;
    // The grantor is the receiver of the other direction. Its window may grow to MAX_WINDOW_BYTES,
    // never past it, counting what the relay still holds for it (§7).
    const direction = pair.a === src ? 1 : 0;
    const credit = direction === 1 ? pair.creditBToA : pair.creditAToB;
    if (credit + this.#windowBudget.heldBytes(id, direction) + bytes > MAX_WINDOW_BYTES) {
      return void pair.actor.send({ type: 'violation', reason: 'FlowControlViolation' });
    }
    // Above the initial window, credit comes out of the relay-wide budget; what does not fit is held.
    const now = bytes === 0 ? 0 : this.#windowBudget.grant(id, direction, credit, bytes);
    if (direction === 1) pair.creditBToA += now;
    else pair.creditAToB += now;
    pair.lastActivity = this.#now;
    this.counters.framesRelayed++;
    this.counters.bytesRelayed += frame.length;
    const dst = pair.a === src ? pair.b : pair.a;
    if (now === bytes) this.#write(dst, frame, src);
    else if (now > 0) this.#writeControl(dst, { type: PacketType.WindowUpdate, connectionId: id, bytes: now });
  }

  #onSocketEnd(conn: ClientConn, connectionId: number): void {
    const pair = this.#pairs.get(connectionId);
    if (pair === undefined || !pair.open || (pair.a !== conn && pair.b !== conn)) {
      this.#writeControl(conn, { type: PacketType.SocketClosed, connectionId, reason: CloseReason.ProtocolViolation });
      return;
    }
    pair.actor.send({ type: 'end.received', end: pair.a === conn ? 'a' : 'b' });
  }

  #onSocketClosed(conn: ClientConn, connectionId: number, reason: number): void {
    const pair = this.#pairs.get(connectionId);
    // §8: unknown ids are ignored (a close may cross another).
    if (pair === undefined || !pair.open || (pair.a !== conn && pair.b !== conn)) return;
    pair.actor.send({ type: 'close.received', end: pair.a === conn ? 'a' : 'b', reason: closeReasonName(reason) });
  }

  // ---------------------------------------------------------------- ports (§5)

  #onBind(conn: ClientConn, packet: PacketOf<typeof PacketType.BindRequest>): void {
    const host = conn.host!;
    const reply = (status: number, port: number) =>
      this.#writeControl(conn, { type: PacketType.BindResponse, requestId: packet.requestId, status, port });
    if (conn.ports.size + conn.pairs.size >= this.#options.maxSocketsPerClient) return reply(BindStatus.LimitReached, packet.port);
    if (this.counters.boundPortCount >= this.#options.maxBoundPorts) {
      this.#refused('maxBoundPorts');
      return reply(BindStatus.LimitReached, packet.port);
    }
    let port = packet.port;
    if (port === 0) {
      const picked = (host.ephemeral ??= new PortAllocator()).allocate();
      if (picked === undefined) return reply(BindStatus.NoFreePort, 0);
      port = picked;
    } else if (host.ports.has(port)) {
      return reply(BindStatus.AddressInUse, port);
    } else if (PortAllocator.inRange(port)) {
      (host.ephemeral ??= new PortAllocator()).take(port);
    }
    host.ports.set(port, conn);
    conn.ports.add(port);
    this.counters.boundPortCount++;
    reply(BindStatus.Ok, port);
    this.bus.emit('port.bound', { clientId: conn.id, virtualIp: host.ipText, port });
  }

  #onUnbind(conn: ClientConn, port: number): void {
    const host = conn.host!;
    if (host.ports.get(port) !== conn) return;
    host.ports.delete(port);
    host.ephemeral?.release(port);
    conn.ports.delete(port);
    this.counters.boundPortCount--;
    this.bus.emit('port.released', { clientId: conn.id, virtualIp: host.ipText, port });
  }

  // ---------------------------------------------------------------- requests (§6)

  #requestFailed(conn: ClientConn, requestId: number, reason: number, kind: 'status' | 'connect'): void {
    this.counters.requestsFailed++;
    this.#writeControl(conn, { type: PacketType.RequestFailed, requestId, reason });
    this.bus.emit('request.failed', { clientId: conn.id, reason: FAILURE_REASON_NAMES[reason] ?? String(reason), kind });
  }

  #handshake(event: HandshakeCompletedEvent): void {
    this.bus.emit('handshake.completed', event);
  }

  #newRequestId(): number {
    let id = this.#nextRequestId;
    while (this.#pending.has(id)) id = (id + 1) % UINT32;
    this.#nextRequestId = (id + 1) % UINT32;
    return id;
  }

  #newConnectionId(): number {
    let id = this.#nextConnectionId;
    // Non-zero and unique among live pairs (§6.2).
    while (id === 0 || this.#pairs.has(id)) id = (id + 1) % UINT32;
    this.#nextConnectionId = (id + 1) % UINT32;
    return id;
  }

  /**
   * Checks shared by both requests. Returns the stamped source and the target connection,
   * or undefined after answering the origin itself.
   */
  #route(
    conn: ClientConn,
    kind: 'status' | 'connect',
    requestId: number,
    source: WireAddress,
    destination: WireAddress,
  ): { source: WireAddress; target: ClientConn } | undefined {
    const host = conn.host!;
    this.counters.requestsTotal++;
    const started = Date.now();
    const src = { ip: host.ip, port: source.port };
    const report = (outcome: HandshakeCompletedEvent['outcome']) =>
      this.#handshake({
        kind,
        clientId: conn.id,
        source: formatAddress(src),
        destination: formatAddress(destination),
        outcome,
        durationMs: Date.now() - started,
      });
    // §6: the source is stamped from the sender's connection; its port must be held by it.
    if (!conn.ports.has(source.port)) {
      this.#requestFailed(conn, requestId, FailureReason.InvalidRequest, kind);
      report('invalid');
      return undefined;
    }
    if (conn.pendingOut >= this.#options.maxPendingRequestsPerClient) {
      this.#requestFailed(conn, requestId, FailureReason.LimitReached, kind);
      report('limit');
      return undefined;
    }
    if (this.#pending.size >= this.#options.maxPendingRequests) {
      this.#refused('maxPendingRequests');
      this.#requestFailed(conn, requestId, FailureReason.LimitReached, kind);
      report('limit');
      return undefined;
    }
    const targetHost = this.#hosts.get(destination.ip);
    if (targetHost === undefined) {
      this.#requestFailed(conn, requestId, FailureReason.Offline, kind);
      report('offline');
      return undefined;
    }
    const target = targetHost.ports.get(destination.port);
    if (target === undefined) {
      if (kind === 'status') {
        this.#writeControl(conn, { type: PacketType.SocketStatusResponse, requestId, status: SocketStatus.NotBound });
        report('not-bound');
      } else {
        this.#writeControl(conn, {
          type: PacketType.SocketConnectionResponse,
          requestId,
          connectionId: 0,
          status: ConnectionStatus.NotListening,
        });
        report('not-listening');
      }
      return undefined;
    }
    // Both ends on one TCP connection would share a connectionId with no way to tell the
    // directions apart; two connections of one host are fine.
    if (target === conn) {
      this.#requestFailed(conn, requestId, FailureReason.InvalidRequest, kind);
      report('invalid');
      return undefined;
    }
    return { source: src, target };
  }

  #onStatusRequest(conn: ClientConn, packet: PacketOf<typeof PacketType.SocketStatusRequest>): void {
    const route = this.#route(conn, 'status', packet.requestId, packet.source, packet.destination);
    if (route === undefined) return;
    const relayId = this.#newRequestId();
    const entry: PendingStatus = {
      kind: 'status',
      relayId,
      origin: conn,
      originRequestId: packet.requestId,
      target: route.target,
      source: formatAddress(route.source),
      destination: formatAddress(packet.destination),
      startedAt: Date.now(),
      timer: setTimeout(() => {
        if (this.#pending.get(relayId) !== entry) return;
        this.#settleStatus(entry);
        this.#requestFailed(conn, packet.requestId, FailureReason.Timeout, 'status');
        this.#handshake({
          kind: 'status',
          clientId: conn.id,
          source: entry.source,
          destination: entry.destination,
          outcome: 'timeout',
          durationMs: Date.now() - entry.startedAt,
        });
      }, this.#options.requestTimeoutMs),
    };
    this.#pending.set(relayId, entry);
    this.counters.pendingCount = this.#pending.size;
    conn.pendingOut++;
    route.target.pendingIn.add(entry);
    this.#writeControl(route.target, {
      type: PacketType.SocketStatusRequest,
      requestId: relayId,
      source: route.source,
      destination: packet.destination,
    });
  }

  #settleStatus(entry: PendingStatus): void {
    clearTimeout(entry.timer);
    this.#pending.delete(entry.relayId);
    this.counters.pendingCount = this.#pending.size;
    entry.origin.pendingOut--;
    entry.target.pendingIn.delete(entry);
  }

  #onStatusResponse(conn: ClientConn, packet: PacketOf<typeof PacketType.SocketStatusResponse>): void {
    const entry = this.#pending.get(packet.requestId);
    // A late or foreign answer is dropped: only the asked connection may answer.
    if (entry === undefined || entry.kind !== 'status' || entry.target !== conn) return;
    this.#settleStatus(entry);
    this.#writeControl(entry.origin, {
      type: PacketType.SocketStatusResponse,
      requestId: entry.originRequestId,
      status: packet.status,
    });
    this.#handshake({
      kind: 'status',
      clientId: entry.origin.id,
      source: entry.source,
      destination: entry.destination,
      outcome:
        packet.status === SocketStatus.Listening ? 'listening' : packet.status === SocketStatus.NotBound ? 'not-bound' : 'not-listening',
      durationMs: Date.now() - entry.startedAt,
    });
  }

  #onConnectionRequest(conn: ClientConn, packet: PacketOf<typeof PacketType.SocketConnectionRequest>): void {
    const route = this.#route(conn, 'connect', packet.requestId, packet.source, packet.destination);
    if (route === undefined) return;
    const target = route.target;
    const limit = this.#options.maxSocketsPerClient;
    if (conn.ports.size + conn.pairs.size >= limit || target.ports.size + target.pairs.size >= limit) {
      this.#requestFailed(conn, packet.requestId, FailureReason.LimitReached, 'connect');
      return;
    }
    // Who asks pays: the requesting host's count, so one real IP's 256 connections cannot
    // open 256 × 1024 pairs (issue 9, finding 3); the relay-wide count caps all hosts together.
    const pairLimit =
      this.#pairs.size >= this.#options.maxPairs
        ? 'maxPairs'
        : this.#pairsPerHost.get(conn.hostKey) >= this.#options.maxPairsPerHost
          ? 'maxPairsPerHost'
          : undefined;
    if (pairLimit !== undefined) {
      this.#refused(pairLimit);
      this.#requestFailed(conn, packet.requestId, FailureReason.LimitReached, 'connect');
      return;
    }
    const id = this.#newConnectionId();
    const relayId = this.#newRequestId();
    const now = Date.now();
    const pair: Pair = {
      id,
      a: conn,
      b: target,
      aAddress: formatAddress(route.source),
      bAddress: formatAddress(packet.destination),
      actor: undefined as unknown as SocketPairActor,
      open: false,
      aEnded: false,
      bEnded: false,
      creditAToB: INITIAL_WINDOW_BYTES,
      creditBToA: INITIAL_WINDOW_BYTES,
      bytesAToB: 0,
      bytesBToA: 0,
      requestedAt: now,
      openedAt: 0,
      lastActivity: now,
      originRequestId: packet.requestId,
      pendingRelayId: relayId,
      responseStatus: ConnectionStatus.Denied,
      state: 'requested',
    };
    this.#pairs.set(id, pair);
    this.#pairsPerHost.add(conn.hostKey, 1);
    this.counters.pairCount = this.#pairs.size;
    this.#pending.set(relayId, { kind: 'connect', pair });
    this.counters.pendingCount = this.#pending.size;
    conn.pendingOut++;
    conn.pairs.add(pair);
    target.pairs.add(pair);
    this.counters.pairsTotal++;
    pair.actor = createActor(this.#pairMachine, { input: { id }, inspect: this.#options.inspect });
    pair.actor.subscribe((snapshot) => {
      const state = stateName(snapshot.value);
      // After release the pair is gone: a late 'finished' must not bring it back to listeners.
      if (state === pair.state || this.#pairs.get(id) !== pair) return;
      pair.state = state;
      this.bus.emit('pair.stateChanged', { id, state });
    });
    pair.actor.start();
    this.#writeControl(target, {
      type: PacketType.SocketConnectionRequest,
      requestId: relayId,
      connectionId: id,
      source: route.source,
      destination: packet.destination,
    });
  }

  #settlePending(pair: Pair): void {
    if (pair.pendingRelayId === undefined) return;
    this.#pending.delete(pair.pendingRelayId);
    this.counters.pendingCount = this.#pending.size;
    pair.pendingRelayId = undefined;
    pair.a.pendingOut--;
  }

  #onConnectionResponse(conn: ClientConn, packet: PacketOf<typeof PacketType.SocketConnectionResponse>): void {
    const entry = this.#pending.get(packet.requestId);
    if (entry === undefined || entry.kind !== 'connect' || entry.pair.b !== conn || entry.pair.id !== packet.connectionId) {
      // Late (after a timeout or the origin left): an accepting target must drop what it opened.
      const known = this.#pairs.get(packet.connectionId);
      if (packet.status === ConnectionStatus.Accepted && packet.connectionId !== 0 && (known === undefined || known.b !== conn)) {
        this.#writeControl(conn, { type: PacketType.SocketClosed, connectionId: packet.connectionId, reason: CloseReason.Error });
      }
      return;
    }
    const pair = entry.pair;
    this.#settlePending(pair);
    const accepted = packet.status === ConnectionStatus.Accepted;
    pair.responseStatus = accepted || packet.status === ConnectionStatus.NotListening ? packet.status : ConnectionStatus.Denied;
    this.#handshake({
      kind: 'connect',
      clientId: pair.a.id,
      source: pair.aAddress,
      destination: pair.bAddress,
      outcome: accepted ? 'accepted' : pair.responseStatus === ConnectionStatus.NotListening ? 'not-listening' : 'denied',
      durationMs: Date.now() - pair.requestedAt,
    });
    pair.actor.send({ type: accepted ? 'response.accepted' : 'response.refused' });
  }

  #releasePair(pair: Pair, reason: string): void {
    if (this.#pairs.get(pair.id) !== pair) return;
    this.#settlePending(pair);
    this.#pairs.delete(pair.id);
    this.#pairsPerHost.add(pair.a.hostKey, -1);
    this.counters.pairCount = this.#pairs.size;
    this.#windowBudget.forget(pair.id, pair.creditAToB, pair.creditBToA);
    pair.a.pairs.delete(pair);
    pair.b.pairs.delete(pair);
    const wasOpen = pair.open;
    pair.open = false;
    const now = Date.now();
    const durationMs = now - (wasOpen ? pair.openedAt : pair.requestedAt);
    if (reason === 'IdleTimeout') this.counters.idleTimeouts++;
    this.#log.debug({ connectionId: pair.id, a: pair.aAddress, b: pair.bAddress, reason }, 'socket connection closed');
    this.#remember({
      kind: 'pair',
      id: pair.id,
      label: `${pair.aAddress} ↔ ${pair.bAddress}`,
      reason,
      at: now,
      durationMs,
      bytes: [pair.bytesAToB, pair.bytesBToA],
    });
    this.bus.emit('pair.closed', {
      id: pair.id,
      a: pair.aAddress,
      b: pair.bAddress,
      reason,
      bytesAToB: pair.bytesAToB,
      bytesBToA: pair.bytesBToA,
      durationMs,
      opened: wasOpen,
    });
  }

  #remember(entry: RecentClose): void {
    if (this.#recent.length >= RECENT_CLOSES_LIMIT) this.#recent.shift();
    this.#recent.push(entry);
  }

  // ---------------------------------------------------------------- keepalive and idle (§4, §8)

  #sweep(): void {
    const now = Date.now();
    this.#now = now;
    const o = this.#options;
    for (const conn of this.#conns.values()) {
      if (!conn.closed) this.#countQueue(conn);
      if (!conn.ready) continue;
      // 'drain' comes only after a write the socket refused; a queue that emptied below the
      // socket's own mark never sends one, so an empty queue releases its sources here.
      if (conn.blockedSources !== undefined && conn.socket.writableLength === 0) this.#socketOnDrain(conn);
      if (conn.blockedSources !== undefined) {
        // Progress is what the receiver took off its socket (bytes written less bytes still
        // queued), not whether one big write has finished: a receiver that reads slowly but
        // steadily keeps its place; one that takes nothing for the timeout while others wait
        // for it is dropped so they can go on (§7, issue 9, finding 5).
        const taken = conn.bytesOut - conn.socket.writableLength;
        if (taken !== conn.progressMark) {
          conn.progressMark = taken;
          conn.progressAt = now;
        } else if (now - conn.progressAt >= o.slowConsumerTimeoutMs) {
          this.counters.slowConsumers++;
          const queuedBytes = conn.socket.writableLength;
          this.#log.warn({ clientId: conn.id, realIp: conn.realIp, queuedBytes }, 'slow consumer, disconnecting');
          conn.actor.send({
            type: 'protocol.error',
            error: 'SlowConsumer',
            message: `took none of ${queuedBytes} queued bytes for ${now - conn.progressAt} ms while others waited`,
          });
          continue;
        }
      }
      // A frame that does not complete in time is an attack or a dead link (docs/RELAY.md
      // "Bounds"); time the relay was not reading the connection for a destination's sake
      // does not count.
      if (conn.frameSince > 0 && !this.#flowBlocked(conn) && now - conn.frameSince >= o.frameTimeoutMs) {
        this.counters.frameTimeouts++;
        const buffered = conn.decoder.bufferedBytes;
        this.#log.warn({ clientId: conn.id, realIp: conn.realIp, bufferedBytes: buffered }, 'frame timeout, disconnecting');
        conn.actor.send({
          type: 'protocol.error',
          error: 'FrameTimeout',
          message: `a frame did not complete within ${o.frameTimeoutMs} ms (${buffered} bytes of it arrived)`,
        });
        continue;
      }
      // A client we stopped reading cannot show signs of life; it is not silent (§4).
      const silentMs = this.#flowBlocked(conn) || conn.budgetWait ? 0 : now - conn.lastSeen;
      if (silentMs >= o.keepaliveTimeoutMs) {
        this.counters.keepaliveTimeouts++;
        this.#log.warn({ clientId: conn.id, realIp: conn.realIp, silentMs }, 'keepalive timeout');
        this.bus.emit('client.keepaliveTimeout', {
          clientId: conn.id,
          realIp: conn.realIp,
          virtualIp: conn.host?.ipText,
          silentMs,
        });
        conn.actor.send({ type: 'keepalive.timeout' });
      } else if (now - conn.lastPingAt >= o.keepaliveIntervalMs) {
        conn.lastPingAt = now;
        conn.nextNonce = (conn.nextNonce + 1) % UINT32;
        this.#writeControl(conn, { type: PacketType.Ping, nonce: conn.nextNonce });
      }
    }
    // Connections held back by the incomplete-frame budget read again once others' bytes fit.
    // The frame timer keeps running meanwhile: a budget filled by trickled frames empties as
    // they time out, instead of holding everyone's frames still.
    for (const conn of [...this.#budgetWaiters]) {
      if (conn.closed || this.#overPartialBudget(conn, conn.partialBytes)) continue;
      this.#budgetWaiters.delete(conn);
      conn.budgetWait = false;
      this.#resumeReading(conn, false);
    }
    if (o.idleTimeoutMs > 0) {
      for (const pair of this.#pairs.values()) {
        if (pair.open && now - pair.lastActivity >= o.idleTimeoutMs) pair.actor.send({ type: 'idle.timeout' });
      }
    }
  }

  // ---------------------------------------------------------------- status and close

  status(query: StatusQuery = {}): RelayStatus {
    const now = Date.now();
    const limit = Math.max(0, query.limit ?? DEFAULT_STATUS_LIST_LIMIT);
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    // Only the page is built: entries before it are skipped, and iteration stops after it.
    const clients: ClientStatus[] = [];
    let index = 0;
    let moreClients = false;
    for (const conn of this.#conns.values()) {
      if (index++ < offset) continue;
      if (clients.length >= limit) {
        moreClients = true;
        break;
      }
      const ports: number[] = [];
      for (const port of conn.ports) {
        if (ports.length >= STATUS_PORTS_LIMIT) break;
        ports.push(port);
      }
      clients.push({
        id: conn.id,
        virtualIp: conn.host?.ipText ?? null,
        realIp: conn.realIp,
        connectedAt: conn.connectedAt,
        state: stateName(conn.actor.getSnapshot().value),
        bytesIn: conn.bytesIn,
        bytesOut: conn.bytesOut,
        sockets: conn.pairs.size,
        ports,
        portCount: conn.ports.size,
        paused: conn.blockedBy !== undefined && conn.blockedBy.size > 0,
        queuedBytes: conn.socket.writableLength,
      });
    }
    const pairs: PairStatus[] = [];
    index = 0;
    for (const pair of this.#pairs.values()) {
      if (index++ < offset) continue;
      if (pairs.length >= limit) break;
      pairs.push({
        id: pair.id,
        a: pair.aAddress,
        b: pair.bAddress,
        state: pair.state,
        openedAt: pair.openedAt,
        bytesAToB: pair.bytesAToB,
        bytesBToA: pair.bytesBToA,
      });
    }
    // A pair is opening exactly while its connection request is pending, so the open ones are
    // counted from the pending requests (bounded per client), not by walking every pair.
    let pairsOpening = 0;
    for (const entry of this.#pending.values()) if (entry.kind === 'connect' && entry.pair.openedAt === 0) pairsOpening++;
    const { store: _store, logger: _logger, inspect: _inspect, host: _host, port: _port, ...limits } = this.#options;
    return {
      host: this.host,
      port: this.port,
      startedAt: this.#startedAt,
      uptimeMs: now - this.#startedAt,
      clients,
      pairs,
      list: {
        limit: Number.isFinite(limit) ? limit : null,
        offset,
        truncated: { clients: moreClients, pairs: offset + pairs.length < this.#pairs.size },
      },
      recentCloses: [...this.#recent],
      totals: {
        ...this.counters,
        clientsConnected: this.#conns.size,
        hosts: this.#hosts.size,
        pairsActive: this.#pairs.size - pairsOpening,
        pairsLive: this.#pairs.size,
        pendingRequests: this.#pending.size,
        storeEntries: this.#options.store.size,
      },
      limits,
    };
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#log.info({ clients: this.#conns.size }, 'relay stopping');
    this.bus.emit('relay.closing', { host: this.host, port: this.port });
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    clearInterval(this.#sweepTimer);
    // Pairs first, so each end reads SocketClosed(RelayShutdown) before Error(RelayShuttingDown).
    for (const pair of [...this.#pairs.values()]) pair.actor.send({ type: 'relay.shutdown' });
    for (const conn of [...this.#conns.values()]) conn.actor.send({ type: 'relay.shutdown' });
    // Not events.once: it would reject on the socket's 'error', which a closing peer may cause.
    await Promise.all(
      [...this.#sockets].map((socket) => (socket.destroyed ? undefined : new Promise((resolve) => socket.once('close', resolve)))),
    );
    await serverClosed;
    await this.#options.store.flush();
    this.#log.info('relay stopped');
    this.bus.emit('relay.closed', { host: this.host, port: this.port });
  }
}

/**
 * Starts a relay and resolves once it listens.
 * The store stays the caller's: the relay flushes it on close but does not close it.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const relay = new RelayServer(resolveRelayOptions(options, silentLogger));
  await relay.listen();
  return relay;
}

export type { PairEnd };
