/**
 * The write path (docs/PROTOCOL.md §7): one Outbound per client socket, the only thing that
 * writes to it, in the style of ws's Sender. Writes made while one received chunk is handled are
 * corked and leave in one writev per destination; a destination whose queue passes the
 * high-water mark stops its sources being read until it drains; bytes are never dropped or
 * reordered.
 */
import type { RelaySocket } from './transport.ts';
import { encodePacket, type Packet } from '../../protocol/index.ts';
import type { Connection } from './connection.ts';
import type { RelayContext } from './context.ts';
import { countRefusal } from './counters.ts';

/** Relay-wide state of the write path while one received chunk is handled. */
export class WriteScope {
  /** True while a received chunk is handled: writes are corked until it is done. */
  inChunk = false;
  /**
   * The client whose bytes are being handled: replies and forwards it causes count against its
   * own backpressure, so a client that floods requests and reads no answers is paused (§7).
   */
  source: Connection | undefined = undefined;
  /** Destinations corked while one received chunk is processed; uncorked together after it. */
  #corked: Outbound[] = [];

  /** Corks `out` until the chunk under way is handled. */
  cork(out: Outbound): void {
    out.corked = true;
    out.socket.cork();
    this.#corked.push(out);
  }

  /** The chunk is handled: writes to each destination made meanwhile leave in one writev. */
  uncorkAll(): void {
    this.inChunk = false;
    const corked = this.#corked;
    if (corked.length === 0) return;
    this.#corked = [];
    for (const out of corked) {
      out.corked = false;
      out.socket.uncork();
    }
  }
}

/** The write path of one client socket. */
export class Outbound {
  readonly socket: RelaySocket;
  readonly conn: Connection;
  readonly #ctx: RelayContext;
  corked = false;
  bytesOut = 0;
  /** The queue length last counted into counters.queuedBytes. */
  queuedSeen = 0;
  /** Bytes it had taken off its socket (taken()) when that last moved, and when. */
  progressMark = 0;
  progressAt = 0;
  /** Sources paused because this destination's queue is full. */
  blockedSources: Set<Connection> | undefined = undefined;

  constructor(socket: RelaySocket, conn: Connection, ctx: RelayContext) {
    this.socket = socket;
    this.conn = conn;
    this.#ctx = ctx;
  }

  /** Writes a control packet; it counts against the backpressure of the client being handled. */
  packet(packet: Packet): void {
    this.write(encodePacket(packet), this.#ctx.scope.source);
  }

  /**
   * Writes bytes. When `src` feeds this destination and its queue passes the high-water mark,
   * `src` stops being read until it drains (§7).
   */
  write(bytes: Uint8Array | readonly Uint8Array[], src: Connection | undefined): void {
    const socket = this.socket;
    if (this.conn.phase === 'closed' || !socket.writable) return;
    if (this.#ctx.scope.inChunk && !this.corked) this.#ctx.scope.cork(this);
    if (bytes instanceof Uint8Array) {
      socket.write(bytes);
      this.bytesOut += bytes.length;
    } else {
      // A frame in slices leaves in one writev: corked above while a chunk is handled, else here.
      if (!this.corked) socket.cork();
      for (const piece of bytes) {
        socket.write(piece);
        this.bytesOut += piece.length;
      }
      if (!this.corked) socket.uncork();
    }
    const queued = this.countQueue();
    if (src !== undefined && queued > this.#ctx.options.highWaterMarkBytes) this.block(src);
  }

  /**
   * Bytes the client's socket has taken so far: what was written less what is still queued, in
   * the transport's own unit when it has one (RelaySocket.bytesTaken: a WebSocket's queue holds
   * message headers too). It moves only when the client takes bytes, the slow-consumer measure.
   */
  taken(): number {
    return this.socket.bytesTaken ?? this.bytesOut - this.socket.writableLength;
  }

  /** Counts the queue into the relay-wide total (counters.queuedBytes) and returns it. */
  countQueue(): number {
    const queued = this.socket.writableLength;
    const delta = queued - this.queuedSeen;
    if (delta !== 0) {
      this.queuedSeen = queued;
      this.#ctx.counters.queuedBytes += delta;
    }
    return queued;
  }

  /** `src` is not read until this destination drains (§7). */
  block(src: Connection): void {
    const ctx = this.#ctx;
    if (this.blockedSources === undefined) {
      this.blockedSources = new Set();
      // Slow-consumer progress is measured from here (sweep.ts).
      this.progressMark = this.taken();
      this.progressAt = ctx.now;
    }
    this.blockedSources.add(src);
    const blockedBy = (src.blockedBy ??= new Set());
    if (!blockedBy.has(this)) {
      blockedBy.add(this);
      if (blockedBy.size === 1) {
        ctx.counters.backpressurePauses++;
        src.socket.pause();
        ctx.bus.emit('flow.paused', { sourceId: src.id, destinationId: this.conn.id, queuedBytes: this.socket.writableLength });
      }
    }
  }

  /**
   * Whether a data frame from `src` must wait (the reader holds it) until this destination
   * drains: its queue is at its high-water mark, or all queues together are at maxQueuedBytes
   * and it holds at least its fair share of that. Judged before the write, so 200 sources into
   * one receiver add at most one frame each past the mark, not a TCP read each (issue 9,
   * finding 5). A destination with a small queue (one that reads) is never held back for
   * others' queues, so stalled receivers filling the relay-wide budget do not stop everyone else.
   */
  mustHold(src: Connection): boolean {
    if (this.conn.phase === 'closed' || !this.socket.writable) return false;
    const ctx = this.#ctx;
    const o = ctx.options;
    const queued = this.countQueue();
    if (queued >= o.highWaterMarkBytes) {
      this.block(src);
      return true;
    }
    if (ctx.counters.queuedBytes >= o.maxQueuedBytes && queued >= o.maxQueuedBytes / Math.max(1, ctx.conns.size)) {
      countRefusal(ctx.counters, 'maxQueuedBytes');
      this.block(src);
      return true;
    }
    return false;
  }

  /** The socket drained (or its connection is gone): the sources it held read again. */
  drained(): void {
    if (this.conn.phase !== 'closed') this.countQueue();
    const sources = this.blockedSources;
    if (sources === undefined) return;
    this.blockedSources = undefined;
    for (const src of sources) {
      const blockedBy = src.blockedBy;
      if (blockedBy === undefined) continue;
      blockedBy.delete(this);
      // A source fed several full destinations: it reads again only when all have drained.
      if (blockedBy.size === 0) {
        src.blockedBy = undefined;
        if (src.phase !== 'closed') {
          src.resumeReading();
          this.#ctx.bus.emit('flow.resumed', { sourceId: src.id, destinationId: this.conn.id, queuedBytes: this.socket.writableLength });
        }
      }
    }
  }
}
