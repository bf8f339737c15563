/**
 * A connected virtual socket: bytes both ways with the protocol's flow control
 * (docs/PROTOCOL.md §7) and half-close, as promises, an async iterator, events and (in Node) a
 * Duplex view (duplex.ts).
 */
// A type only: the Duplex view itself is in duplex.ts, which the browser bundle leaves out.
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'eventemitter3';
import { ChunkQueue } from './chunk-queue.ts';
import { toBase64url } from '../../protocol/base64url.ts';
import {
  CLOSE_REASON_NAMES,
  CloseReason,
  INITIAL_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  PacketType,
  encodeArbitraryData,
  encodeArbitraryDataHeader,
  encodePacket,
} from '../../protocol/index.ts';
import type { VirtualSocketMachineEvent, VirtualSocketTag } from '../../machines/virtual-socket.machine.ts';
import { stateName, viewOf } from './actor-view.ts';
import { ClientError, ClosedByPeerError, ClosedByRelayError } from './errors.ts';
import { plaintextEndMismatch, startsWithPreamble } from './e2e/preamble.ts';
import type { VirtualSocketActor, VirtualSocketView } from './virtual-socket.ts';

/**
 * The receiver grants credit back once the application has taken this many bytes of the
 * initial window, so a sender streams without stalls while a stopped reader stops granting
 * (§7). A grown window is granted back in quarters of its own size.
 */
export const WINDOW_UPDATE_THRESHOLD_BYTES = INITIAL_WINDOW_BYTES / 4;

/**
 * Payloads below this size are copied into one frame; larger ones are written as a 9-byte head
 * plus the caller's bytes (one writev): a copy per 64 KiB frame showed in the tunnels' profiles.
 */
export const COPY_PAYLOAD_BELOW_BYTES = 16 * 1024;

/** Buffering of a connection's Duplex view (see {@link toDuplex}). */
export const DUPLEX_WRITABLE_HIGH_WATER_MARK_BYTES = 256 * 1024;
export const DUPLEX_READABLE_HIGH_WATER_MARK_BYTES = 64 * 1024;

/**
 * How much a receive window grows per blocked round (docs/PROTOCOL.md §7): from 1 MiB to the
 * 16 MiB cap in two round trips. Doubling took four, and on the bench's long link (100 ms round
 * trip) that ramp was a fifth of a 128 MiB transfer.
 */
export const WINDOW_GROWTH_FACTOR = 4;

/** What a connection needs from the client that owns the relay session. */
export interface ConnectionHost {
  /** Writes a frame to the relay; false when the session is gone or must drain. */
  write(frame: Uint8Array): boolean;
  /**
   * Writes an ArbitraryData head and its payload without copying; `flushed` is called once the
   * payload is no longer referenced (handed to the kernel, or the session is gone).
   */
  writeData(head: Uint8Array, payload: Uint8Array, flushed?: () => void): boolean;
  /**
   * Writes byte pieces back to back, together (one writev on TCP), without copying: a frame
   * whose payload lies in several buffers (a sealed record's head, ciphertext and tag).
   */
  writePieces(pieces: readonly Uint8Array[]): boolean;
  /** Bytes written that the kernel has not taken yet (0: every payload written is released). */
  readonly unflushedBytes: number;
  /** Resolves when the relay connection can take more. */
  drained(): Promise<void>;
  /** Largest ArbitraryData payload per frame (maxFrameBytes − 9). */
  readonly maxPayloadBytes: number;
  /** The connection is over; forget its id (and release a connector's port). */
  release(connection: VirtualConnection): void;
  /** Makes the Duplex view; undefined where there are no Node streams (a browser). */
  readonly toDuplex: ((connection: VirtualConnection) => Duplex) | undefined;
}

/** Events of a {@link VirtualConnection}. */
export interface VirtualConnectionEvents {
  /** A chunk, once something listens for 'data' (the connection then flows on its own). */
  data: [chunk: Uint8Array];
  /** The peer half-closed: no more data will come. */
  end: [];
  /** The connection is over; `error` is undefined for a clean finish or a local close(). */
  close: [error: ClientError | undefined];
}

/** Where a connection's ends are. */
export interface ConnectionAddresses {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** The peer's identity key as the relay announced it (PeerKey, docs/PROTOCOL.md §2a). */
  peerKey?: Uint8Array | undefined;
}

/** send() takes strings as UTF-8. */
const UTF8 = new TextEncoder();

/** What a refused send() argument was, for the error message. */
function describeArgument(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'an object';
  return typeof value;
}

/**
 * One end of a socket connection. Obtain it from `socket.connect()` or `socket.accept()`.
 *
 * @example
 * ```ts
 * await conn.send(new TextEncoder().encode('hello'));
 * await conn.end();
 * for await (const chunk of conn) process.stdout.write(chunk);
 * ```
 */
export class VirtualConnection extends EventEmitter<VirtualConnectionEvents> {
  /**
   * The connection's state machine, read-only (the same view as the socket that connected, if
   * any): `actor.getSnapshot()`, `actor.subscribe()`. Only the client sends it events.
   */
  readonly actor: VirtualSocketView;
  /**
   * The machine is the one record of this connection's lifecycle (half-close both ways, closed):
   * the connection keeps no flag of its own beside it. The data path asks the snapshot's tags
   * (`readable`, `writable`) per frame: a Set lookup, ~10 ns against ~90 µs per 64 KiB frame.
   */
  readonly #actor: VirtualSocketActor;
  /** The relay's id of this pair. */
  readonly connectionId: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * The peer's Ed25519 public key (32 raw bytes) as the relay announced it, proven by the peer at
   * its Hello (docs/PROTOCOL.md §2a); undefined when either end proved none.
   */
  readonly peerKey: Uint8Array | undefined;
  #host: ConnectionHost;
  #sendWindow = INITIAL_WINDOW_BYTES;
  #sendTail: Promise<void> = Promise.resolve();
  /** send() calls not settled yet; with none, a send starts at once instead of after the tail. */
  #sendsPending = 0;
  #windowWaiter: (() => void) | undefined;
  readonly #queue = new ChunkQueue();
  /** Readers waiting in read(): all are woken, each takes a chunk or waits again. */
  #readWaiters: Array<() => void> = [];
  /**
   * Receive window (docs/PROTOCOL.md §7): the most this end lets the peer have in flight or
   * queued here. It grows ×WINDOW_GROWTH_FACTOR (up to MAX_WINDOW_BYTES) when the peer reports it is blocked on
   * credit while this end's application keeps up, and goes back to the initial window when the
   * application leaves three quarters of it unread.
   */
  #window = INITIAL_WINDOW_BYTES;
  /** Payload credit granted since the start, the initial window included. */
  #granted = INITIAL_WINDOW_BYTES;
  /** Payload bytes received, and taken by the application, since the start. */
  #received = 0;
  #taken = 0;
  /** #received when the window last grew or shrank: it grows at most once per window of data. */
  #grewAt = 0;
  /** The peer has been told this end is blocked on credit since the last grant (one signal per stall). */
  #blockedSignalled = false;
  #error: ClientError | undefined;
  #flowing = false;
  /** The 'data' flow has read to the end (or the failure): 'end' and 'close' go out at once again. */
  #flowDone = false;
  /** 'end' and 'close' held back until the 'data' before them was emitted. */
  #deferred: Array<[keyof VirtualConnectionEvents, unknown[]]> = [];
  #pendingWriteError: ClientError | undefined;
  /** Bytes passed to send() and not written yet (behind earlier sends, the window or the link). */
  #unsent = 0;
  /** This end does not encrypt end to end: the first data frame is checked for a peer that does. */
  #plaintextEnd = false;

  /** Made by the client; scripts get connections from sockets. */
  constructor(host: ConnectionHost, actor: VirtualSocketActor, connectionId: number, addresses: ConnectionAddresses) {
    super();
    this.#host = host;
    this.#actor = actor;
    this.actor = viewOf(actor);
    this.connectionId = connectionId;
    this.localAddress = addresses.localAddress;
    this.localPort = addresses.localPort;
    this.remoteAddress = addresses.remoteAddress;
    this.remotePort = addresses.remotePort;
    this.peerKey = addresses.peerKey;
  }

  /** {@link peerKey} as unpadded base64url (what `client.fingerprint` shows on the peer), or undefined. */
  get peerFingerprint(): string | undefined {
    // Not Buffer: this file is in the browser bundle too.
    return this.peerKey === undefined ? undefined : toBase64url(this.peerKey);
  }

  /**
   * @internal What a connection layered over this one shares (end-to-end encryption,
   * actors/client/e2e/): its host and its actor, so both report one lifecycle.
   */
  layerParts(): { host: ConnectionHost; actor: VirtualSocketActor } {
    return { host: this.#host, actor: this.#actor };
  }

  /**
   * @internal More bytes wait to be sent than the peer's credit lets go: they go only once the
   * peer reads. End-to-end encryption's close() cuts then instead of waiting on the peer.
   */
  get sendsAwaitCredit(): boolean {
    return this.#unsent > this.#sendWindow;
  }

  /** True once the connection is over (finished, closed, or failed). */
  get closed(): boolean {
    return this.#isClosed();
  }

  /**
   * The state's full name: connected.open, connected.ending (end() called, SocketEnd waits for
   * earlier sends), connected.writeEnded, connected.readEnded, connected.finishing, or closed.
   */
  get state(): string {
    return stateName(this.#actor.getSnapshot().value);
  }

  #isClosed(): boolean {
    return this.#actor.getSnapshot().status !== 'active';
  }

  #can(tag: VirtualSocketTag): boolean {
    return this.#actor.getSnapshot().hasTag(tag);
  }

  /**
   * Moves the machine; true when this event closed the connection. The machine reaches closed
   * once, so the caller runs the close's effects ({@link #closedEffects}) exactly once.
   */
  #step(event: VirtualSocketMachineEvent): boolean {
    const actor = this.#actor;
    if (actor.getSnapshot().status !== 'active') return false;
    actor.send(event);
    return actor.getSnapshot().status !== 'active';
  }

  /** Why the connection failed, if it did. */
  get error(): ClientError | undefined {
    return this.#error;
  }

  /**
   * Sends bytes (a string is sent as its UTF-8 encoding), split into frames of at most
   * maxFrameBytes − 9 payload bytes. Resolves once the flow-control window and the relay
   * connection have taken them all, so awaiting each send() applies the receiver's
   * backpressure. Calls are sent in order. Anything but a Uint8Array (a Buffer is one) or a
   * string is refused with ERR_INVALID_ARGUMENT.
   */
  send(data: Uint8Array | string): Promise<void> {
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) bytes = data;
    else if (typeof data === 'string') bytes = UTF8.encode(data);
    else {
      const got = describeArgument(data);
      return Promise.reject(new ClientError('ERR_INVALID_ARGUMENT', `send() takes a Uint8Array or a string, got ${got}`));
    }
    if (!this.#can('writable')) return Promise.reject(this.#writeError());
    return this.#enqueue(bytes.length, () => this.#sendNow(bytes));
  }

  /**
   * Runs `start` once every send ahead of it has finished (at once when none: a promise hop per
   * call saved on the bulk path), counting `total` bytes as not yet written until it writes them.
   */
  #enqueue(total: number, start: () => Promise<void>): Promise<void> {
    this.#unsent += total;
    const run = this.#sendsPending === 0 ? start() : this.#sendTail.then(start);
    this.#sendsPending++;
    this.#sendTail = run.then(this.#sendSettled, this.#sendSettled);
    return run;
  }

  readonly #sendSettled = (): void => {
    this.#sendsPending--;
  };

  /**
   * Out of credit: tells the receiver once per stall that it is the window, not the link, that
   * holds us back (a zero-byte WindowUpdate, so it may grow the window it grants, §7; older peers
   * take it as a keepalive), then waits for a grant or the close.
   */
  #awaitCredit(): Promise<void> {
    if (!this.#blockedSignalled) {
      this.#blockedSignalled = true;
      this.#host.write(encodePacket({ type: PacketType.WindowUpdate, connectionId: this.connectionId, bytes: 0 }));
    }
    return new Promise<void>((resolve) => (this.#windowWaiter = resolve));
  }

  /**
   * @internal Sends the pieces' bytes back to back, as one send() of their concatenation would,
   * without joining them: each frame's payload is written as views of the pieces (the end-to-end
   * layer's records: head, ciphertext, tag). The pieces must not change afterwards (they are
   * not waited for like send()'s buffer). Same order, window and backpressure as send().
   */
  sendPieces(pieces: readonly Uint8Array[]): Promise<void> {
    if (!this.#can('writable')) return Promise.reject(this.#writeError());
    let total = 0;
    for (const piece of pieces) total += piece.length;
    return this.#enqueue(total, () => this.#sendPiecesNow(pieces, total));
  }

  async #sendPiecesNow(pieces: readonly Uint8Array[], total: number): Promise<void> {
    let offset = 0;
    /** The piece holding byte `offset`, and where in it. */
    let index = 0;
    let within = 0;
    while (offset < total) {
      if (this.#isClosed()) throw this.#writeError();
      if (this.#sendWindow === 0) {
        await this.#awaitCredit();
        continue;
      }
      const n = Math.min(total - offset, this.#sendWindow, this.#host.maxPayloadBytes);
      const frame: Uint8Array[] = [encodeArbitraryDataHeader(this.connectionId, n)];
      for (let left = n; left > 0; ) {
        const piece = pieces[index];
        const take = Math.min(left, piece.length - within);
        if (take > 0) frame.push(within === 0 && take === piece.length ? piece : piece.subarray(within, within + take));
        left -= take;
        within += take;
        if (within === piece.length) {
          index++;
          within = 0;
        }
      }
      const ok = this.#host.writePieces(frame);
      this.#sendWindow -= n;
      this.#unsent -= n;
      offset += n;
      if (!ok) await this.#host.drained();
    }
  }

  async #sendNow(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    let released: Promise<void> | undefined;
    let release: (() => void) | undefined;
    while (offset < bytes.length) {
      if (this.#isClosed()) throw this.#writeError();
      if (this.#sendWindow === 0) {
        await this.#awaitCredit();
        continue;
      }
      const n = Math.min(bytes.length - offset, this.#sendWindow, this.#host.maxPayloadBytes);
      const payload = bytes.subarray(offset, offset + n);
      let ok: boolean;
      if (n < COPY_PAYLOAD_BELOW_BYTES) ok = this.#host.write(encodeArbitraryData(this.connectionId, payload));
      else {
        // Only the last frame's callback is needed: the socket releases writes in order.
        released = new Promise<void>((resolve) => (release = resolve));
        ok = this.#host.writeData(encodeArbitraryDataHeader(this.connectionId, n), payload, release);
      }
      this.#sendWindow -= n;
      this.#unsent -= n;
      offset += n;
      if (!ok) await this.#host.drained();
    }
    // The caller may reuse its buffer once send() resolves: wait until the socket let go of it,
    // unless it already has (the usual case: the kernel took the write at once).
    if (released !== undefined && this.#host.unflushedBytes > 0) await released;
  }

  #writeError(): ClientError {
    if (this.#error) return this.#error;
    if (this.#pendingWriteError) return this.#pendingWriteError;
    const snapshot = this.#actor.getSnapshot();
    if (snapshot.status !== 'active' && !snapshot.context.writeEnded) return new ClientError('ERR_SOCKET_STATE', 'the connection is closed');
    return new ClientError('ERR_SOCKET_STATE', 'the connection was ended for writing (end() was called)');
  }

  /**
   * Half-closes: after the sends already made, tells the peer no more data comes (SocketEnd).
   * The peer can still answer; read until the end.
   */
  end(): Promise<void> {
    const snapshot = this.#actor.getSnapshot();
    // A second call settles with the first: SocketEnd is written once, after the earlier sends.
    if (snapshot.context.writeEnded) return this.#ending ?? Promise.resolve();
    if (snapshot.status !== 'active') return Promise.reject(this.#writeError());
    this.#ending = this.#endAfterSends();
    return this.#ending;
  }

  #ending: Promise<void> | undefined;

  async #endAfterSends(): Promise<void> {
    this.#actor.send({ type: 'socket.end' });
    await this.#sendTail;
    if (this.#isClosed()) {
      // Failed (relay lost, peer aborted) before SocketEnd could go: the end was not delivered.
      if (this.#error !== undefined) throw this.#error;
      return;
    }
    this.#host.write(encodePacket({ type: PacketType.SocketEnd, connectionId: this.connectionId }));
    // After the peer's SocketEnd this one finishes the pair (§7), with no further packet.
    if (this.#step({ type: 'socket.end.sent' })) this.#closedEffects();
  }

  /**
   * Closes both directions at once (SocketClosed Normal); unread data is dropped. Everything
   * already written still arrives, and the peer's reads end cleanly, as after a TCP close. Bytes
   * of a send() still waiting for window credit or for the relay link to drain are cut: then the
   * peer hears an abort (its reads fail with ERR_CLOSED_BY_PEER), never a clean end of cut data.
   */
  close(): void {
    // Bytes passed to send() and not written yet (waiting for credit or for the link to drain)
    // are cut by the close: the peer must not take what it got for all of it, so it hears an
    // abort, as after destroy(), not a clean close.
    this.#closeWith(this.#unsent > 0 ? CloseReason.Error : CloseReason.Normal);
  }

  /**
   * Aborts the connection (SocketClosed Error, docs/PROTOCOL.md §8): unlike close(), the peer's
   * reads fail with ERR_CLOSED_BY_PEER instead of ending cleanly, so a transfer cut short by an
   * error is never mistaken for a complete one. Unread data is dropped.
   */
  destroy(): void {
    this.#closeWith(CloseReason.Error);
  }

  /**
   * @internal Closes with `reason` (SocketClosed, docs/PROTOCOL.md §8): end-to-end encryption
   * tells the peer why (E2eIntegrity, E2eTruncated, E2eMismatch), so both ends fail alike.
   */
  closeWithReason(reason: CloseReason): void {
    this.#closeWith(reason);
  }

  /**
   * @internal This end does not encrypt end to end (e2e off, or no identity): a peer that does
   * starts with the e2e preamble (e2e/preamble.ts), and the connection then fails with
   * ERR_E2E_MISMATCH on both ends instead of handing its handshake to the application.
   */
  expectPlaintextPeer(): void {
    this.#plaintextEnd = true;
  }

  #closeWith(reason: CloseReason): void {
    if (this.#isClosed()) return;
    this.#host.write(encodePacket({ type: PacketType.SocketClosed, connectionId: this.connectionId, reason }));
    this.#queue.clear();
    this.#finish(undefined);
  }

  /**
   * Sends a zero-byte WindowUpdate: activity for the relay's idle timeout (§8) that grants
   * nothing, so a connection that is quiet on purpose (an SSH session, a lobby) stays open.
   */
  keepAlive(): void {
    if (this.#isClosed()) return;
    this.#host.write(encodePacket({ type: PacketType.WindowUpdate, connectionId: this.connectionId, bytes: 0 }));
  }

  /**
   * The next chunk, or null at the end of the peer's data. Rejects with the connection's error
   * (e.g. ERR_CLOSED_BY_RELAY, ERR_RELAY_LOST) once the data that came before it is read.
   */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.takeChunk();
      if (chunk !== undefined) return chunk;
      if (this.#error) throw this.#error;
      if (!this.#can('readable')) return null;
      await new Promise<void>((resolve) => this.#readWaiters.push(resolve));
    }
  }

  /** Chunks until the peer ends; throws the connection's error if it fails. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  /** Adding a 'data' listener makes the connection flow: chunks are read and emitted. */
  override on<T extends keyof VirtualConnectionEvents>(
    event: T,
    fn: (...args: VirtualConnectionEvents[T]) => void,
    context?: unknown,
  ): this {
    super.on(event, fn as never, context);
    if (event === 'data') this.#startFlow();
    return this;
  }

  override once<T extends keyof VirtualConnectionEvents>(
    event: T,
    fn: (...args: VirtualConnectionEvents[T]) => void,
    context?: unknown,
  ): this {
    super.once(event, fn as never, context);
    if (event === 'data') this.#startFlow();
    return this;
  }

  override addListener<T extends keyof VirtualConnectionEvents>(
    event: T,
    fn: (...args: VirtualConnectionEvents[T]) => void,
    context?: unknown,
  ): this {
    return this.on(event, fn, context);
  }

  #startFlow(): void {
    if (this.#flowing) return;
    this.#flowing = true;
    void this.#flow();
  }

  async #flow(): Promise<void> {
    try {
      for await (const chunk of this) {
        try {
          this.emit('data', chunk);
        } catch (error) {
          // A listener threw: as with any Node emitter the error is the application's, thrown
          // where it can see it (an uncaught exception), and the connection is aborted rather
          // than left open with nothing reading it and the peer stalled on its window.
          this.destroy();
          queueMicrotask(() => {
            throw error;
          });
          break;
        }
      }
    } catch {
      // The error reaches listeners through 'close'.
    }
    this.#flowDone = true;
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const [event, args] of deferred) this.#emitNow(event, args);
  }

  /**
   * While chunks flow as 'data', 'end' and 'close' wait until the chunks that arrived before them
   * have been emitted: a peer's data and its end often come in one read, and a listener that
   * gathers 'data' until 'end' must see all of it.
   */
  override emit<T extends keyof VirtualConnectionEvents>(event: T, ...args: VirtualConnectionEvents[T]): boolean {
    if (this.#flowing && !this.#flowDone && (event === 'end' || event === 'close')) {
      this.#deferred.push([event, args]);
      return true;
    }
    return this.#emitNow(event, args);
  }

  /**
   * 'end' and 'close' are emitted from inside the client's own work (a frame being handled, the
   * relay lost with every connection to fail): a listener that throws must not cut that short
   * (the rest of a read lost, other connections never failed). Its error is thrown as an
   * uncaught exception instead, as a throwing listener of a Node socket's 'close' is.
   */
  #emitNow(event: keyof VirtualConnectionEvents, args: unknown[]): boolean {
    const emit = EventEmitter.prototype.emit as (this: unknown, event: keyof VirtualConnectionEvents, ...args: unknown[]) => boolean;
    if (event !== 'end' && event !== 'close') return emit.call(this, event, ...args);
    try {
      return emit.call(this, event, ...args);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
      return true;
    }
  }

  /**
   * A Node Duplex view with backpressure and half-close; see `toDuplex`. Node only: in a
   * browser it throws ERR_UNSUPPORTED (use read()/send() or the async iterator).
   */
  duplex(): Duplex {
    const make = this.#host.toDuplex;
    if (make === undefined) throw new ClientError('ERR_UNSUPPORTED', 'the Duplex view needs Node streams; in a browser use read(), send() or for await');
    return make(this);
  }

  /**
   * @internal The next chunk already received, taken at once (counted as read, so its window
   * credit goes back), or undefined when none is waiting. The Duplex view drains with it
   * without a promise per chunk.
   */
  takeChunk(): Uint8Array | undefined {
    const chunk = this.#queue.shift();
    if (chunk === undefined) return undefined;
    this.#consumed(chunk.length);
    return chunk;
  }

  /** The receive window this end grants now, in bytes (INITIAL_WINDOW_BYTES up to MAX_WINDOW_BYTES). */
  get receiveWindow(): number {
    return this.#window;
  }

  /** Bytes received and not yet read by the application. Never more than the receive window granted. */
  get bufferedBytes(): number {
    return this.#received - this.#taken;
  }

  #consumed(bytes: number): void {
    this.#taken += bytes;
    this.#grant();
  }

  /**
   * Grants the peer what keeps its credit plus what is in flight or queued here at the window:
   * window − (granted − taken), once that is at least a quarter window (§7). After the window
   * shrank, nothing is granted until the application has read below the new size.
   */
  #grant(): void {
    const owed = this.#window - (this.#granted - this.#taken);
    if (owed < this.#window / 4 || this.#isClosed()) return;
    this.#granted += owed;
    this.#host.write(encodePacket({ type: PacketType.WindowUpdate, connectionId: this.connectionId, bytes: owed }));
  }

  /**
   * The peer is blocked on credit. If this end's application keeps up (little unread) and a
   * window's worth of data has come since the window last grew, the link holds more than the
   * window: grow it ×WINDOW_GROWTH_FACTOR, up to MAX_WINDOW_BYTES, and grant the difference at once.
   */
  #peerBlocked(): void {
    if (this.#window >= MAX_WINDOW_BYTES || this.#received - this.#grewAt < this.#window) return;
    if (this.bufferedBytes > this.#window / 4) return;
    this.#window = Math.min(MAX_WINDOW_BYTES, this.#window * WINDOW_GROWTH_FACTOR);
    this.#grewAt = this.#received;
    this.#grant();
  }

  #wakeReader(): void {
    if (this.#readWaiters.length === 0) return;
    const waiters = this.#readWaiters;
    this.#readWaiters = [];
    for (const waiter of waiters) waiter();
  }

  #wakeSender(): void {
    const waiter = this.#windowWaiter;
    this.#windowWaiter = undefined;
    waiter?.();
  }

  /** @internal The payload of one ArbitraryData frame for this connection, in one or more pieces. */
  receiveData(pieces: readonly Uint8Array[]): void {
    if (!this.#can('readable')) return;
    let payload = 0;
    for (const piece of pieces) payload += piece.length;
    if (this.#received + payload > this.#granted) {
      // More than this end granted (§7): the relay enforces every pair's credit, so only a relay
      // that breaks the protocol delivers it, and buffering it would let the queue grow without
      // limit. The pair is closed as the relay closes a sender past its window.
      const over = this.#received + payload - this.#granted;
      const error = new ClosedByRelayError(
        'FlowControlViolation',
        `the relay delivered ${over} bytes from ${this.remoteAddress}:${this.remotePort} past the receive window this end granted (${this.#granted} bytes in all, docs/PROTOCOL.md §7): it breaks flow control; the connection is closed (FlowControlViolation)`,
      );
      this.#host.write(encodePacket({ type: PacketType.SocketClosed, connectionId: this.connectionId, reason: CloseReason.FlowControlViolation }));
      this.#queue.clear();
      this.#finish(error);
      return;
    }
    if (this.#plaintextEnd) {
      this.#plaintextEnd = false;
      if (startsWithPreamble(pieces)) {
        const error = new ClientError('ERR_E2E_MISMATCH', plaintextEndMismatch(`${this.remoteAddress}:${this.remotePort}`));
        this.#host.write(encodePacket({ type: PacketType.SocketClosed, connectionId: this.connectionId, reason: CloseReason.E2eMismatch }));
        this.#queue.clear();
        this.#finish(error);
        return;
      }
    }
    for (const piece of pieces) {
      this.#queue.push(piece);
      this.#received += piece.length;
    }
    // The application has left most of a window unread: it, not the link, is the bottleneck, so
    // the window goes back to the initial one (it grows again in a few rounds if the link needs it).
    if (this.#window > INITIAL_WINDOW_BYTES && this.bufferedBytes >= (this.#window * 3) / 4) {
      this.#window = INITIAL_WINDOW_BYTES;
      this.#grewAt = this.#received;
    }
    this.#wakeReader();
  }

  /** @internal WindowUpdate for this connection: credit, or (0 bytes) the peer is blocked on ours. */
  receiveWindowUpdate(bytes: number): void {
    if (bytes === 0) {
      this.#peerBlocked();
      return;
    }
    this.#sendWindow += bytes;
    this.#blockedSignalled = false;
    this.#wakeSender();
  }

  /** @internal SocketEnd from the peer. */
  receiveEnd(): void {
    if (!this.#can('readable')) return;
    // After our SocketEnd this one finishes the pair (§7), with no further packet; 'end' still
    // comes before 'close'.
    const finished = this.#step({ type: 'socket.end.received' });
    this.#wakeReader();
    this.emit('end');
    if (finished) this.#closedEffects();
  }

  /** @internal SocketClosed from the relay, mapped to a typed error (§8). */
  receiveClosed(reason: number): void {
    if (this.#isClosed()) return;
    const name = CLOSE_REASON_NAMES[reason] ?? `reason ${reason}`;
    const peer = `${this.remoteAddress}:${this.remotePort}`;
    let error: ClientError;
    if (reason === CloseReason.Normal) {
      // The peer's close() is the end of its data; only writing fails from now on.
      error = new ClosedByPeerError(`${peer} closed the connection`);
      this.#finish(undefined, error);
      return;
    }
    if (reason === CloseReason.PeerDisconnected) error = new ClosedByPeerError(`${peer} disconnected from the relay`);
    else if (reason === CloseReason.Error) error = new ClosedByPeerError(`${peer} aborted the connection`);
    // The peer's end-to-end encryption found what this end sent altered or cut short (§8).
    else if (reason === CloseReason.E2eIntegrity) {
      error = new ClientError('ERR_E2E_INTEGRITY', `${peer} found data from this end failed end-to-end authentication: tampered, replayed, reordered or dropped on the way; the connection is closed`);
    } else if (reason === CloseReason.E2eTruncated) {
      error = new ClientError('ERR_E2E_TRUNCATED', `${peer} got this end's data cut short on the way (its end-to-end end marker never arrived): truncated; the connection is closed`);
    } else if (reason === CloseReason.E2eMismatch) error = new ClientError('ERR_E2E_MISMATCH', plaintextEndMismatch(peer));
    else error = new ClosedByRelayError(name, `the relay closed the connection to ${peer}: ${name}`);
    this.#finish(error);
  }

  /** @internal The relay session ended. */
  fail(error: ClientError): void {
    this.#finish(error);
  }

  /**
   * Ends the connection. `error` fails reads (after queued data) and writes; `writeError`
   * fails only writes (a peer's clean close).
   */
  #finish(error: ClientError | undefined, writeError?: ClientError): void {
    if (this.#isClosed()) return;
    this.#error = error;
    if (error === undefined && writeError !== undefined) this.#pendingWriteError = writeError;
    this.#step({ type: 'socket.close', ...(error ? { code: error.code, message: error.message } : {}) });
    this.#closedEffects();
  }

  /** What follows the machine reaching closed: forget the id, wake waiters, tell listeners. */
  #closedEffects(): void {
    this.#host.release(this);
    this.#wakeReader();
    this.#wakeSender();
    this.emit('close', this.#error);
  }
}
