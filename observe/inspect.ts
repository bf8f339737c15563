/**
 * XState inspection for the relay and the client: an observer that streams every actor to a
 * Stately inspector over WebSocket (@statelyai/inspect), and a tracker that keeps the current
 * state of every live machine actor for the dashboard. Both are plain `inspect` callbacks, so the
 * relay and client pass one function to every `createActor` and know nothing of either.
 */
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { WebSocket } from 'ws';
import type { InspectionEvent } from 'xstate';
import { describeError } from '../actors/describe-error.ts';
import type { Logger } from '../actors/logger.ts';

/**
 * Where `--inspect` streams when given no URL: this machine, on the port after the relay's
 * 1337. Not 8080 (the port `createInspectorServer()` picks by default), because 8080 is where
 * users' own web servers listen, and an inspector stream sent to one of those is noise to it;
 * start the inspector bridge with `createInspectorServer({ port: 1338 })` or pass its URL.
 */
export const DEFAULT_INSPECT_URL = 'ws://127.0.0.1:1338';

/** An `inspect` callback as `createActor(logic, { inspect })` takes it. */
export type InspectFn = (event: InspectionEvent) => void;

/** A running WebSocket inspector. */
export interface WebSocketInspection {
  /** Pass to `createActor(..., { inspect })` (or to the relay/client `inspect` option). */
  inspect: InspectFn;
  /** Closes the WebSocket; events after this are dropped. */
  stop(): void;
}

/** Options of {@link createWebSocketInspection}. */
export interface WebSocketInspectionOptions {
  /** The inspector's WebSocket URL. @default DEFAULT_INSPECT_URL */
  url?: string;
  /**
   * Events held while the socket is not yet open; the oldest are dropped past this, so an absent
   * inspector costs bounded memory.
   * @default 1000
   */
  maxDeferredEvents?: number;
  /**
   * Told once when the inspector is reached, once per outage when it cannot be (URL and
   * reason), and when it is lost; never once per retry. @default silent
   */
  logger?: Logger;
}

/** Events kept while the inspector is unreachable. */
export const DEFAULT_MAX_DEFERRED_INSPECTION_EVENTS = 1000;
/** Pause before dialling the inspector again after the connection fails or drops. */
export const INSPECT_RECONNECT_DELAY_MS = 2_000;
/** Bytes queued on the inspector socket above which events are dropped rather than buffered. */
export const INSPECT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** Frame payloads travel in events; an inspector needs their size, not megabytes of numbers. */
function inspectionReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: value.byteLength };
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function') return { type: value.name || 'anonymous' };
  return value;
}

/**
 * The transport of @statelyai/inspect's `createInspector`, over `ws`. The library's own
 * `createWebSocketInspector` adapter retries every 5 s on a timer that keeps the process alive
 * and keeps redialling after `stop()`, so a relay with `--inspect` and no inspector would never
 * exit; this one uses unref'd timers, stops for good, and bounds memory both ways.
 */
class WsInspectorAdapter {
  #socket: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #deferred: StatelyInspectionEvent[] = [];
  /** True from a failed dial or a lost connection until the next open: one warning per outage. */
  #outage = false;
  dropped = 0;

  constructor(
    private readonly url: string,
    private readonly maxDeferred: number,
    private readonly logger: Logger | undefined,
  ) {}

  start(): void {
    if (this.#stopped || this.#socket) return;
    const socket = new WebSocket(this.url);
    this.#socket = socket;
    let opened = false;
    let failure: unknown;
    socket.on('open', () => {
      opened = true;
      this.#outage = false;
      this.logger?.info({ url: this.url }, 'connected to the inspector');
      for (const event of this.#deferred.splice(0)) this.#write(event);
    });
    socket.on('error', (error) => {
      // 'close' follows and schedules the retry; an absent inspector is not the relay's fault.
      failure = error;
    });
    socket.on('close', (code) => {
      this.#socket = undefined;
      if (this.#stopped) return;
      const reason = failure !== undefined ? describeError(failure) : `closed (${code})`;
      if (opened) {
        this.logger?.warn({ url: this.url, reason, retryMs: INSPECT_RECONNECT_DELAY_MS }, 'lost the inspector; dialling again');
      } else if (!this.#outage) {
        this.logger?.warn({ url: this.url, reason, retryMs: INSPECT_RECONNECT_DELAY_MS }, 'cannot reach the inspector; dialling again until it answers');
      }
      this.#outage = true;
      this.#timer = setTimeout(() => this.start(), INSPECT_RECONNECT_DELAY_MS);
      this.#timer.unref();
    });
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#socket?.terminate();
    this.#socket = undefined;
    this.#deferred.length = 0;
  }

  send(event: StatelyInspectionEvent): void {
    if (this.#stopped) return;
    if (this.#socket?.readyState === WebSocket.OPEN) return this.#write(event);
    this.#deferred.push(event);
    if (this.#deferred.length > this.maxDeferred) {
      this.#deferred.shift();
      this.dropped++;
    }
  }

  #write(event: StatelyInspectionEvent): void {
    const socket = this.#socket as WebSocket;
    if (socket.bufferedAmount > INSPECT_MAX_BUFFERED_BYTES) {
      this.dropped++;
      return;
    }
    let text: string;
    try {
      text = JSON.stringify(event, inspectionReplacer);
    } catch {
      // A cyclic context cannot be shown; the rest of the stream still can.
      this.dropped++;
      return;
    }
    socket.send(text);
  }
}

/**
 * Streams actor registrations, events and snapshots to a Stately-protocol WebSocket inspector
 * (e.g. `createInspectorServer()` from `@statelyai/inspect/server`, or any `ws` server), in the
 * message format of @statelyai/inspect's `createWebSocketInspector`.
 */
export function createWebSocketInspection(options: WebSocketInspectionOptions = {}): WebSocketInspection {
  const adapter = new WsInspectorAdapter(
    options.url ?? DEFAULT_INSPECT_URL,
    options.maxDeferredEvents ?? DEFAULT_MAX_DEFERRED_INSPECTION_EVENTS,
    options.logger,
  );
  const inspector = createInspector(adapter, { maxDeferredEvents: options.maxDeferredEvents ?? DEFAULT_MAX_DEFERRED_INSPECTION_EVENTS });
  inspector.start();
  const observer = inspector.inspect;
  let stopped = false;
  return {
    inspect: (event) => {
      if (!stopped) observer.next?.(event);
    },
    stop: () => {
      stopped = true;
      inspector.stop();
    },
  };
}

/** Several inspect callbacks as one; `undefined` entries are skipped. */
export function combineInspect(...fns: (InspectFn | undefined)[]): InspectFn | undefined {
  const present = fns.filter((f): f is InspectFn => f !== undefined);
  if (present.length === 0) return undefined;
  if (present.length === 1) return present[0];
  return (event) => {
    for (const fn of present) fn(event);
  };
}

export { MachineStateTracker, type MachineOccupancy } from './machine-state-tracker.ts';
