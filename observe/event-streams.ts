/**
 * The `/api/events` subscribers, with backpressure. A push is written only to streams that have
 * drained what they were sent before; a stream still draining skips pushes and gets the newest
 * one when it drains, so a page that reads slowly sees fewer updates rather than older ones and a
 * subscriber that never reads holds at most one message in the relay's heap. A stream that still
 * has more than `maxQueuedBytes` queued when the next push comes, or that has not drained for
 * `drainTimeoutMs`, is cut and counted.
 */
import type http from 'node:http';
import { EventEmitter } from 'eventemitter3';
import type { Logger } from '../actors/logger.ts';
import type { HttpMetrics, StreamDropReason } from './http-metrics.ts';

/** Live-update subscribers at once; more get 503, so a runaway script cannot exhaust the relay. */
export const DEFAULT_MAX_EVENT_STREAMS = 64;
/** Bytes a stream may still have queued when the next push comes; more and it is cut (a push is tens of KiB). */
export const DEFAULT_MAX_STREAM_QUEUED_BYTES = 1024 * 1024;
/** How long a stream may go without draining before it is cut (a stalled or vanished reader). */
export const DEFAULT_STREAM_DRAIN_TIMEOUT_MS = 15_000;

/** Options of {@link EventStreams}. */
export interface EventStreamsOptions {
  /** @default DEFAULT_MAX_EVENT_STREAMS (64) */
  maxStreams?: number;
  /** @default DEFAULT_MAX_STREAM_QUEUED_BYTES (1 MiB) */
  maxQueuedBytes?: number;
  /** @default DEFAULT_STREAM_DRAIN_TIMEOUT_MS (15 s) */
  drainTimeoutMs?: number;
  /** @default undefined */
  metrics?: HttpMetrics;
  /** @default undefined */
  logger?: Logger;
}

interface StreamState {
  /** When the stream last had a write it could not take at once; 0 while it keeps up. */
  blockedSince: number;
  /** A push was skipped while blocked: send the newest on drain. */
  missed: boolean;
}

/** What {@link EventStreams} tells its listeners. */
export interface EventStreamEvents {
  /** A stream was cut for a bound (after it was counted in /metrics). */
  'stream.dropped': [{ reason: StreamDropReason; queuedBytes: number }];
  /** A reader closed its stream (a page went away); the slot is free for another. */
  'stream.closed': [];
}

/** The set of open live-update streams of one server. */
export class EventStreams extends EventEmitter<EventStreamEvents> {
  readonly #streams = new Map<http.ServerResponse, StreamState>();
  readonly #maxStreams: number;
  readonly #maxQueuedBytes: number;
  readonly #drainTimeoutMs: number;
  readonly #metrics: HttpMetrics | undefined;
  readonly #logger: Logger | undefined;
  #latest = '';

  constructor(options: EventStreamsOptions = {}) {
    super();
    this.#maxStreams = options.maxStreams ?? DEFAULT_MAX_EVENT_STREAMS;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_STREAM_QUEUED_BYTES;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_STREAM_DRAIN_TIMEOUT_MS;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#metrics?.readStreams(() => ({ streams: this.#streams.size, queuedBytes: this.queuedBytes() }));
  }

  get size(): number {
    return this.#streams.size;
  }

  /** True when another stream would pass `maxStreams`. */
  get full(): boolean {
    return this.#streams.size >= this.#maxStreams;
  }

  /** Bytes queued in the relay for every stream. */
  queuedBytes(): number {
    let total = 0;
    for (const res of this.#streams.keys()) total += res.writableLength;
    return total;
  }

  /** Adopts a response whose event-stream headers are written, and sends it `first`. */
  open(req: http.IncomingMessage, res: http.ServerResponse, first: string): void {
    const state: StreamState = { blockedSince: 0, missed: false };
    this.#streams.set(res, state);
    req.once('close', () => {
      // A stream cut by #drop is already gone from the set, and was reported as dropped.
      if (this.#streams.delete(res)) this.emit('stream.closed');
    });
    this.#write(res, state, first);
  }

  /** Sends `message` to every stream that keeps up; the others get the newest message on drain. */
  send(message: string): void {
    this.#latest = message;
    for (const [res, state] of this.#streams) {
      if (state.blockedSince === 0) this.#write(res, state, message);
      else if (res.writableLength > this.#maxQueuedBytes) this.#drop(res, 'queue');
      else state.missed = true;
    }
    this.sweep();
  }

  /** Cuts streams that have not drained for the drain timeout. */
  sweep(now = Date.now()): void {
    for (const [res, state] of this.#streams) {
      if (state.blockedSince > 0 && now - state.blockedSince >= this.#drainTimeoutMs) this.#drop(res, 'stalled');
    }
  }

  /** Ends every stream (the server is closing). */
  closeAll(): void {
    for (const res of this.#streams.keys()) res.end();
    this.#streams.clear();
  }

  #write(res: http.ServerResponse, state: StreamState, message: string): void {
    if (res.write(message)) return;
    state.blockedSince = Date.now();
    res.once('drain', () => {
      if (!this.#streams.has(res)) return;
      state.blockedSince = 0;
      if (state.missed) {
        state.missed = false;
        this.#write(res, state, this.#latest);
      }
    });
  }

  #drop(res: http.ServerResponse, reason: StreamDropReason): void {
    const queuedBytes = res.writableLength;
    this.#streams.delete(res);
    this.#metrics?.streamDropped(reason);
    this.#logger?.warn({ reason, queuedBytes }, 'live-update stream cut');
    // destroy, not end: end would queue behind what the reader is not taking.
    res.destroy();
    this.emit('stream.dropped', { reason, queuedBytes });
  }
}
