/**
 * Prometheus metrics of one relay, with prom-client (the de-facto Node client: text format,
 * histograms, default process metrics including event-loop lag). Each relay gets its own
 * Registry, never the global default, so two relays in one process (specs, embedding) do not mix.
 *
 * Scrapes stay cheap with thousands of clients: counters move on bus events (set-up and
 * tear-down only), live gauges are kept as running counts updated per event, and the data-path
 * counters are read from the relay in `collect()`; nothing walks the client table on a scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RelayBus, RelayBusEvents } from '../actors/relay/relay-events.ts';
import type { StoreWriteInfo } from '../storage/index.ts';
import type { LogDropCounts } from '../actors/logger.ts';
import { registerHttpMetrics, type HttpMetrics } from './http-metrics.ts';

/** Bytes and frames the relay forwarded on its data path (§7), read at scrape time. */
export interface DataPathCounters {
  /** Frames forwarded from one client to another (ArbitraryData, WindowUpdate, SocketEnd…). */
  framesRelayed: number;
  /** Bytes of those frames. */
  bytesRelayed: number;
  /** The relay's bounds (docs/RELAY.md "Bounds"); absent ones are reported as 0. */
  partialFrameBytes?: number;
  partialFramePauses?: number;
  frameTimeouts?: number;
  queuedBytes?: number;
  slowConsumers?: number;
  pairCount?: number;
  pendingCount?: number;
  boundPortCount?: number;
  limitRefusals?: Readonly<Record<string, number>>;
  logFieldsTruncated?: number;
  /** Datagrams (docs/PROTOCOL.md §10): forwarded, their bytes, dropped by reason, bound ports. */
  datagramsRelayed?: number;
  datagramBytesRelayed?: number;
  datagramsDropped?: Readonly<Record<string, number>>;
  datagramPortCount?: number;
}

/** Options of {@link createRelayMetrics}. */
export interface RelayMetricsOptions {
  /** The relay's bus. */
  bus: RelayBus;
  /** Reads the data-path counters at scrape time. @default undefined (reported as 0) */
  dataPath?: () => DataPathCounters;
  /** Prefix of every AlphaNET metric. @default 'alphanet_' */
  prefix?: string;
  /** Also collect prom-client's default process metrics (event-loop lag, memory, CPU). @default true */
  defaultMetrics?: boolean;
  /** Resolution of the event-loop lag monitor. @default DEFAULT_EVENT_LOOP_PRECISION_MS (10 ms) */
  eventLoopPrecisionMs?: number;
  /** Reads the log lines the relay's logger dropped (logDrops in actors/logger.ts). @default undefined (0) */
  logDrops?: () => Readonly<LogDropCounts>;
}

/** Event-loop lag sampling resolution. */
export const DEFAULT_EVENT_LOOP_PRECISION_MS = 10;
/** Handshakes are set-up round trips through two clients: from sub-millisecond to the 10 s timeout. */
const HANDSHAKE_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** A store write is an fsync: ~0.1 ms on tmpfs, tens of ms on a busy disk. */
const STORE_WRITE_BUCKETS_S = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The metrics of one relay. */
export interface RelayMetrics {
  /** The registry to scrape. */
  readonly registry: Registry;
  /** Pass to `openAddressStore({ onWrite })` to record store writes. */
  readonly onStoreWrite: (info: StoreWriteInfo) => void;
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  /** The content type of {@link RelayMetrics.metrics}. */
  readonly contentType: string;
  /** The observation HTTP server's own metrics (responses, live streams, bounds). */
  readonly http: HttpMetrics;
  /** Stops listening on the bus. */
  close(): void;
}

/**
 * Registers the relay's metrics on a fresh registry and keeps them current from the bus.
 * Names and labels are listed in docs/OBSERVABILITY.md.
 */
export function createRelayMetrics(options: RelayMetricsOptions): RelayMetrics {
  const p = options.prefix ?? 'alphanet_';
  const registry = new Registry();
  const { bus } = options;

  let clients = 0;
  // Pair id → current machine state, so the by-state gauge is a count over live pairs only.
  const pairStates = new Map<number, string>();
  const readDataPath = () => options.dataPath?.() ?? { framesRelayed: 0, bytesRelayed: 0 };

  new Gauge({
    name: `${p}clients_connected`,
    help: 'Client connections that finished set-up (Hello → VirtualIP) and are live.',
    registers: [registry],
    collect() {
      this.set(clients);
    },
  });
  const clientConnections = new Counter({
    name: `${p}client_connections_total`,
    help: 'Client connections that finished set-up since the relay started.',
    registers: [registry],
  });
  const clientDisconnects = new Counter({
    name: `${p}client_disconnects_total`,
    help: 'Client connections ended, by reason (an error code name or TransportClosed).',
    labelNames: ['reason'],
    registers: [registry],
  });
  new Gauge({
    name: `${p}socket_connections`,
    help: 'Live socket connections (pairs), by socket-pair machine state.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      const byState = new Map<string, number>();
      for (const state of pairStates.values()) byState.set(state, (byState.get(state) ?? 0) + 1);
      for (const [state, n] of byState) this.set({ state }, n);
    },
  });
  const socketOpens = new Counter({
    name: `${p}socket_connections_opened_total`,
    help: 'Socket connections accepted into the active-socket table.',
    registers: [registry],
  });
  const socketCloses = new Counter({
    name: `${p}socket_closes_total`,
    help: 'Socket connections closed, by reason (a CloseReason name or Finished).',
    labelNames: ['reason'],
    registers: [registry],
  });
  new Counter({
    name: `${p}frames_relayed_total`,
    help: 'Frames forwarded between clients on the data path.',
    registers: [registry],
    collect() {
      // prom-client counters only go up by inc(); the relay's own counter is the source of truth.
      this.reset();
      this.inc(readDataPath().framesRelayed);
    },
  });
  new Counter({
    name: `${p}bytes_relayed_total`,
    help: 'Bytes of frames forwarded between clients on the data path.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(readDataPath().bytesRelayed);
    },
  });
  // Bounds (docs/RELAY.md "Bounds"): read from the relay's counters at scrape time.
  const bound = (name: string, help: string, read: (c: DataPathCounters) => number | undefined, kind: 'gauge' | 'counter') => {
    const Metric = kind === 'gauge' ? Gauge : Counter;
    new Metric({
      name: `${p}${name}`,
      help,
      registers: [registry],
      collect(this: Gauge | Counter) {
        this.reset();
        const value = read(readDataPath()) ?? 0;
        if (this instanceof Gauge) this.set(value);
        else this.inc(value);
      },
    });
  };
  bound('partial_frame_bytes', 'Bytes of incomplete or held frames the relay keeps, relay-wide.', (c) => c.partialFrameBytes, 'gauge');
  bound('partial_frame_pauses_total', 'Times a connection was not read because incomplete-frame bytes were over budget.', (c) => c.partialFramePauses, 'counter');
  bound('frame_timeouts_total', 'Connections closed with Error(FrameTimeout).', (c) => c.frameTimeouts, 'counter');
  bound('queued_bytes', 'Bytes queued for all destinations together.', (c) => c.queuedBytes, 'gauge');
  bound('slow_consumers_total', 'Connections dropped with Error(SlowConsumer).', (c) => c.slowConsumers, 'counter');
  bound('pairs', 'Socket connections requested or open.', (c) => c.pairCount, 'gauge');
  bound('pending_requests', 'Requests waiting on targets.', (c) => c.pendingCount, 'gauge');
  bound('bound_ports', 'Bound ports.', (c) => c.boundPortCount, 'gauge');
  bound('log_fields_truncated_total', 'Client-supplied log fields cut at --max-log-field-chars.', (c) => c.logFieldsTruncated, 'counter');
  bound('datagrams_relayed_total', 'Datagrams forwarded between clients.', (c) => c.datagramsRelayed, 'counter');
  bound('datagram_bytes_relayed_total', 'Bytes of datagram frames forwarded between clients.', (c) => c.datagramBytesRelayed, 'counter');
  bound('datagram_ports', 'Bound datagram ports.', (c) => c.datagramPortCount, 'gauge');
  new Counter({
    name: `${p}datagrams_dropped_total`,
    help: 'Datagrams dropped, by reason: congested, notBound, rateLimited, unboundSource.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(readDataPath().datagramsDropped ?? {})) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: `${p}limit_refusals_total`,
    help: 'Requests, binds, connections and data held back or refused by a bound, by the bound (its option name).',
    labelNames: ['limit'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [limit, n] of Object.entries(readDataPath().limitRefusals ?? {})) this.inc({ limit }, n);
    },
  });
  const handshakes = new Histogram({
    name: `${p}handshake_duration_seconds`,
    help: 'Time from a socket status/connection request to its answer, by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    buckets: HANDSHAKE_BUCKETS_S,
    registers: [registry],
  });
  const requestFailures = new Counter({
    name: `${p}request_failures_total`,
    help: 'Requests answered with RequestFailed or a refusal, by kind and reason.',
    labelNames: ['kind', 'reason'],
    registers: [registry],
  });
  const errors = new Counter({
    name: `${p}errors_total`,
    help: 'Error packets the relay sent (protocol errors and keepalive timeouts), by code name.',
    labelNames: ['code'],
    registers: [registry],
  });
  const storeWrites = new Counter({
    name: `${p}store_writes_total`,
    help: 'Committed (fsynced) writes of the address store.',
    registers: [registry],
  });
  const storeWriteDuration = new Histogram({
    name: `${p}store_write_duration_seconds`,
    help: 'Duration of one committed address-store write, fsync included.',
    buckets: STORE_WRITE_BUCKETS_S,
    registers: [registry],
  });
  const storeAllocations = new Counter({
    name: `${p}store_allocations_written_total`,
    help: 'New real IP → virtual IP entries made durable by address-store writes.',
    registers: [registry],
  });
  const storeShardsWritten = new Counter({
    name: `${p}store_shards_written_total`,
    help: 'Shard files written by address-store commits.',
    registers: [registry],
  });

  const http = registerHttpMetrics(registry, p);
  new Counter({
    name: `${p}log_lines_dropped_total`,
    help: 'Log lines dropped: reason "queue" (stderr queue over 8 MiB: a stalled reader) or "closed" (stderr failed, e.g. EPIPE).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const drops = options.logDrops?.() ?? { queueFull: 0, streamClosed: 0 };
      this.reset();
      this.inc({ reason: 'queue' }, drops.queueFull);
      this.inc({ reason: 'closed' }, drops.streamClosed);
    },
  });

  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({
      register: registry,
      eventLoopMonitoringPrecision: options.eventLoopPrecisionMs ?? DEFAULT_EVENT_LOOP_PRECISION_MS,
    });
  }

  const unsubscribe: (() => void)[] = [];
  const on = <E extends keyof RelayBusEvents>(event: E, listener: (...args: RelayBusEvents[E]) => void) => {
    bus.on(event, listener);
    unsubscribe.push(() => bus.off(event, listener));
  };
  on('client.connected', () => {
    clients++;
    clientConnections.inc();
  });
  on('client.disconnected', (e) => {
    // Only clients that finished set-up were counted in.
    if (e.virtualIp !== undefined) clients = Math.max(0, clients - 1);
    clientDisconnects.inc({ reason: e.reason });
  });
  on('client.protocolError', (e) => errors.inc({ code: e.code }));
  on('client.keepaliveTimeout', () => errors.inc({ code: 'KeepaliveTimeout' }));
  on('pair.opened', (e) => {
    socketOpens.inc();
    if (!pairStates.has(e.id)) pairStates.set(e.id, 'active');
  });
  on('pair.stateChanged', (e) => pairStates.set(e.id, e.state));
  on('pair.closed', (e) => {
    pairStates.delete(e.id);
    if (e.opened) socketCloses.inc({ reason: e.reason });
  });
  on('handshake.completed', (e) => handshakes.observe({ kind: e.kind, outcome: e.outcome }, e.durationMs / 1000));
  on('request.failed', (e) => requestFailures.inc({ kind: e.kind, reason: e.reason }));

  return {
    registry,
    http,
    contentType: registry.contentType,
    onStoreWrite: (info) => {
      storeWrites.inc();
      storeWriteDuration.observe(info.durationMs / 1000);
      storeAllocations.inc(info.entries);
      storeShardsWritten.inc(info.shards);
    },
    metrics: () => registry.metrics(),
    close: () => {
      for (const off of unsubscribe.splice(0)) off();
      registry.clear();
    },
  };
}
