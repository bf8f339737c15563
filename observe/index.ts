/**
 * Observation of a running relay, in one object: the inspect callback for its actors (dashboard
 * state tracking, and a Stately WebSocket inspector with `inspectUrl`), the store-write hook for
 * metrics, and the HTTP server (dashboard, /api/status, /api/events, /metrics, /healthz).
 *
 * ```ts
 * const observation = createRelayObservation({ inspectUrl });
 * const store = await openAddressStore({ onWrite: observation.onStoreWrite });
 * const relay = await startRelay({ store, inspect: observation.inspect });
 * const http = await observation.attach(relay, { port: 8081 });
 * ```
 */
import type { Relay, RelayStatus } from '../actors/relay/index.ts';
import type { StatusQuery } from '../actors/relay/relay.actor.ts';
import type { RelayBusEvents } from '../actors/relay/relay-events.ts';
import type { StoreWriteInfo } from '../storage/index.ts';
import { logDrops } from '../actors/logger.ts';
import { combineInspect, createWebSocketInspection, MachineStateTracker, type InspectFn, type MachineOccupancy, type WebSocketInspection } from './inspect.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import { describeMachines } from './machine-export.ts';
import { machinesOf, type MachineRegistration } from '../machines/index.ts';
import { startObserveServer, type ObserveServer, type ObserveServerOptions } from './observe-server.ts';

export { DEFAULT_INSPECT_URL, createWebSocketInspection, combineInspect, MachineStateTracker } from './inspect.ts';
export type { InspectFn, MachineOccupancy, WebSocketInspection, WebSocketInspectionOptions } from './inspect.ts';
export { createRelayMetrics } from './metrics.ts';
export type { RelayMetrics, RelayMetricsOptions } from './metrics.ts';
export {
  startObserveServer,
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_MAX_CONNECTIONS,
  DEFAULT_MAX_EVENT_STREAMS,
  DEFAULT_MAX_STREAM_QUEUED_BYTES,
  DEFAULT_STREAM_DRAIN_TIMEOUT_MS,
  DEFAULT_STATUS_LIST_LIMIT,
} from './observe-server.ts';
export { ObserveError } from './errors.ts';
export type { ObserveServer, ObserveServerOptions } from './observe-server.ts';

/** What /api/status returns and /api/events pushes: the relay's status plus machine occupancy. */
export interface ObservedStatus extends RelayStatus {
  /** Machine id → live actors and how many are in each state (ids as in docs/machines/*.json). */
  machines: Record<string, MachineOccupancy>;
}

/** Options of {@link createRelayObservation}. */
export interface RelayObservationOptions {
  /** Stream every actor to a Stately inspector at this WebSocket URL. @default undefined (off) */
  inspectUrl?: string;
}

/**
 * Options of {@link RelayObservation.attach}: where to serve and which machines to draw; the
 * push and bound tunables are the server's own (observe-server.ts documents their defaults).
 */
export interface AttachOptions
  extends Pick<
    ObserveServerOptions,
    | 'host'
    | 'logger'
    | 'pushIntervalMs'
    | 'heartbeatIntervalMs'
    | 'maxEventStreams'
    | 'maxStreamQueuedBytes'
    | 'streamDrainTimeoutMs'
    | 'statusListLimit'
    | 'maxConnections'
  > {
  /** Serve HTTP on this port (0 = any free one); without it only metrics are kept. @default undefined */
  port?: number;
  /**
   * Machines drawn on the dashboard. @default the registry's relay-side machines
   * (`machinesOf('relay')`, machines/index.ts): a client-side machine would always show
   * "0 live" on a relay's page.
   */
  machines?: readonly MachineRegistration[];
}

/** Observation of one relay. */
export interface RelayObservation {
  /** Pass to `startRelay({ inspect })`. */
  readonly inspect: InspectFn;
  /** Pass to `openAddressStore({ onWrite })`. */
  readonly onStoreWrite: (info: StoreWriteInfo) => void;
  /** Current machine states of the relay's live actors. */
  readonly tracker: MachineStateTracker;
  /** The Stately inspector connection, when `inspectUrl` was given. */
  readonly inspection: WebSocketInspection | undefined;
  /** The relay's metrics, once attached. */
  readonly metrics: RelayMetrics | undefined;
  /** The HTTP server, once attached with a port. */
  readonly server: ObserveServer | undefined;
  /** The status as /api/status serves it: counts, and one page of clients and pairs. */
  status(query?: StatusQuery): ObservedStatus;
  /** Starts metrics and (with `port`) the HTTP server for a started relay. */
  attach(relay: Relay, options?: AttachOptions): Promise<ObserveServer | undefined>;
  /** Stops the server, the metrics and the inspector. */
  close(): Promise<void>;
}

/** Bus events that change what the dashboard shows. */
const CHANGE_EVENTS: readonly (keyof RelayBusEvents)[] = [
  'client.connected',
  'client.disconnected',
  'pair.opened',
  'pair.stateChanged',
  'pair.closed',
  'port.bound',
  'port.released',
];

/** Creates the observation; attach it to the relay once started. */
export function createRelayObservation(options: RelayObservationOptions = {}): RelayObservation {
  const tracker = new MachineStateTracker();
  const inspection = options.inspectUrl !== undefined ? createWebSocketInspection({ url: options.inspectUrl }) : undefined;
  const inspect = combineInspect(tracker.inspect, inspection?.inspect) as InspectFn;
  let relay: Relay | undefined;
  let metrics: RelayMetrics | undefined;
  let server: ObserveServer | undefined;
  // Store writes can precede attach (the store opens before the relay); they are replayed.
  const earlyWrites: StoreWriteInfo[] = [];

  const status = (query?: StatusQuery): ObservedStatus => {
    if (!relay) throw new Error('createRelayObservation: status() before attach()');
    return { ...relay.status(query), machines: tracker.occupancy() };
  };

  return {
    inspect,
    tracker,
    inspection,
    get metrics() {
      return metrics;
    },
    get server() {
      return server;
    },
    onStoreWrite: (info) => {
      if (metrics) metrics.onStoreWrite(info);
      else if (earlyWrites.length < 1024) earlyWrites.push(info);
    },
    status,
    attach: async (target, attachOptions = {}) => {
      relay = target;
      const logger = attachOptions.logger;
      metrics = createRelayMetrics({ bus: target.bus, dataPath: () => target.counters, logDrops: logger && (() => logDrops(logger)) });
      for (const info of earlyWrites.splice(0)) metrics.onStoreWrite(info);
      if (attachOptions.port === undefined) return undefined;
      server = await startObserveServer({
        status,
        onChange: (listener) => {
          for (const event of CHANGE_EVENTS) target.bus.on(event, listener);
          return () => {
            for (const event of CHANGE_EVENTS) target.bus.off(event, listener);
          };
        },
        metrics,
        machines: describeMachines(attachOptions.machines ?? machinesOf('relay')),
        host: attachOptions.host,
        port: attachOptions.port,
        logger: attachOptions.logger,
        pushIntervalMs: attachOptions.pushIntervalMs,
        heartbeatIntervalMs: attachOptions.heartbeatIntervalMs,
        maxEventStreams: attachOptions.maxEventStreams,
        maxStreamQueuedBytes: attachOptions.maxStreamQueuedBytes,
        streamDrainTimeoutMs: attachOptions.streamDrainTimeoutMs,
        statusListLimit: attachOptions.statusListLimit,
        maxConnections: attachOptions.maxConnections,
      });
      return server;
    },
    close: async () => {
      await server?.close();
      metrics?.close();
      inspection?.stop();
    },
  };
}
