/**
 * One client TCP connection: the only reader of its socket (through its FrameReader) and, through
 * its Outbound, the only writer. It counts what it reads against the bounds (docs/RELAY.md
 * "Bounds"), hands data frames to the data path and control packets to their handlers, and is
 * read again when what held it back is gone.
 */
import type { RelaySocket } from './transport.ts';
import type { Actor } from 'xstate';
import {
  DATA_FRAME_HEAD_BYTES,
  PACKET_TYPE_NAMES,
  PacketType,
  ProtocolError,
  WINDOW_UPDATE_FRAME_BYTES,
  decodeFrame,
  readConnectionId,
} from '../../protocol/index.ts';
import type {
  RelayConnectionErrorName,
  RelayConnectionPhase,
  relayConnectionMachine,
} from '../../machines/relay-connection.machine.ts';
import type { ClientDisconnectedEvent } from './relay-events.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';
import { Outbound } from './outbound.ts';
import type { RelayContext } from './context.ts';
import type { VirtualHost } from './hosts.ts';
import type { Pair } from './pairs.ts';
import type { PendingStatus } from './pending.ts';
import { CLOSE_LINGER_MS } from './relay-types.ts';

/**
 * Largest frame accepted before the relay has answered Hello (§2). Hello is 11 bytes; anything
 * larger from a connection that has not said who it is would only make the relay allocate.
 */
export const PRE_HELLO_MAX_FRAME_BYTES = 64;

/** Maps the reader's error codes to the fatal condition the client hears (§9). */
export function protocolErrorName(error: ProtocolError): RelayConnectionErrorName {
  switch (error.code) {
    case 'ERR_FRAME_TOO_LARGE':
      return 'FrameTooLarge';
    case 'ERR_UNKNOWN_PACKET_TYPE':
      return 'UnknownPacketType';
    default:
      return 'MalformedFrame';
  }
}

/** One client TCP connection; its machine (`actor`) decides its lifecycle, `phase` caches it. */
export class Connection {
  readonly id: number;
  readonly socket: RelaySocket;
  readonly realIp: string;
  /** What per-host limits count under: the real IP, or its IPv6 prefix (limits.ts). */
  readonly hostKey: string;
  readonly reader: FrameReader;
  readonly out: Outbound;
  actor!: Actor<typeof relayConnectionMachine>;
  /**
   * The machine's state, cached for the checks on every frame and write. Written only by the
   * machine's `enterPhase` entry actions (machines.ts), so it cannot drift from the machine.
   */
  phase: RelayConnectionPhase | 'starting' = 'starting';
  host: VirtualHost | undefined = undefined;
  /** The reader's buffered bytes as last counted into the per-host and relay-wide totals. */
  partialBytes = 0;
  /** When the frame under way started arriving (0: none), for the frame timeout. */
  frameSince = 0;
  /** The reader's completed-frame count when frameSince was last judged. */
  framesSeen = 0;
  /** Not read because its host's or the relay's incomplete-frame bytes are over budget. */
  budgetWait = false;
  readonly connectedAt: number;
  lastSeen: number;
  lastPingAt: number;
  nextNonce = 1;
  bytesIn = 0;
  readonly ports = new Set<number>();
  readonly pairs = new Set<Pair>();
  /** Requests from this client waiting on a target. */
  pendingOut = 0;
  /** Status requests forwarded to this client, to fail if it leaves. */
  readonly pendingIn = new Set<PendingStatus>();
  /** Destinations whose full queues paused this source (§7). Allocated on first use. */
  blockedBy: Set<Outbound> | undefined = undefined;
  /** The Challenge sent (§2a), until the IdentityProof answers it. */
  challenge: Uint8Array | undefined = undefined;
  /** The Ed25519 key the client proved at Hello (§2a); undefined for a version-1 client. */
  publicKey: Uint8Array | undefined = undefined;
  /** What client.disconnected reports, set when the connection is released. */
  closedEvent: ClientDisconnectedEvent | undefined = undefined;
  readonly #ctx: RelayContext;

  constructor(ctx: RelayContext, id: number, socket: RelaySocket, realIp: string, hostKey: string) {
    this.#ctx = ctx;
    this.id = id;
    this.socket = socket;
    this.realIp = realIp;
    this.hostKey = hostKey;
    this.connectedAt = this.lastSeen = this.lastPingAt = ctx.clock.now();
    this.reader = new FrameReader(
      {
        frame: (type, frame) => this.#onFrame(type, frame),
        dataPieces: (connectionId, frameBytes, pieces) => this.#onDataPieces(connectionId, frameBytes, pieces),
      },
      { maxFrameBytes: PRE_HELLO_MAX_FRAME_BYTES },
    );
    this.out = new Outbound(socket, this, ctx);
  }

  /**
   * Bytes of frames under way or held: the reader's, and what its transport holds of input it has
   * not handed out yet (a WebSocket message under way, ws-unfinished.ts).
   */
  get bufferedBytes(): number {
    return this.reader.bufferedBytes + (this.socket.unfinishedBytes ?? 0);
  }

  /** Its machine has reached `closed` (read through the phase cache). */
  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Listens to its socket; the machine hears when the transport closes. */
  wire(): void {
    this.socket.on('data', (chunk: Buffer) => this.#socketOnData(chunk));
    this.socket.on('drain', () => this.out.drained());
    this.socket.on('unfinished', () => this.#socketOnUnfinished());
    this.socket.once('close', () => this.actor.send({ type: 'transport.closed' }));
  }

  #socketOnData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    const ctx = this.#ctx;
    ctx.now = ctx.clock.now();
    // Life (§4) is a completed frame (#onFrame), not a byte: a trickle must not look alive.
    this.bytesIn += chunk.length;
    ctx.counters.bytesIn += chunk.length;
    this.#feed(chunk);
  }

  /** Its transport read bytes it holds back (a WebSocket message under way): count them as read. */
  #socketOnUnfinished(): void {
    if (this.phase === 'closed') return;
    this.#ctx.now = this.#ctx.clock.now();
    this.#afterRead();
  }

  /**
   * Handles `chunk` (or, without one, the frame the reader held and what follows it) as bytes
   * from this client: replies and forwards count against its backpressure (§7), and writes to
   * each destination leave in one writev. Re-entrant: a source resumed while another's chunk is
   * handled shares that chunk's corking.
   */
  #feed(chunk: Buffer | undefined): void {
    const scope = this.#ctx.scope;
    const nested = scope.inChunk;
    const outer = scope.source;
    scope.inChunk = true;
    scope.source = this;
    let error: ProtocolError | undefined;
    try {
      error = chunk === undefined ? this.reader.resume() : this.reader.push(chunk);
    } finally {
      scope.source = outer;
      if (!nested) scope.uncorkAll();
    }
    this.#afterRead();
    if (error !== undefined) this.protocolError(protocolErrorName(error), error.message);
  }

  /**
   * After bytes were handled: counts what the reader keeps, notes whether the frame under way
   * is new (for the frame timeout), and stops reading a connection whose host or the relay
   * is over its incomplete-frame budget (docs/RELAY.md "Bounds").
   */
  #afterRead(): void {
    const ctx = this.#ctx;
    ctx.reading.count(this);
    const reader = this.reader;
    // Bytes the transport holds are a frame under way too: on a WebSocket, the reader sees a
    // trickled message only once it is whole.
    if (!reader.incomplete && !(this.socket.unfinishedBytes ?? 0)) this.frameSince = 0;
    else if (this.frameSince === 0 || reader.frames !== this.framesSeen) this.frameSince = ctx.now;
    this.framesSeen = reader.frames;
    if (this.phase === 'closed' || this.budgetWait || this.partialBytes === 0 || !ctx.reading.over(this, 0)) return;
    this.budgetWait = true;
    ctx.reading.waiters.add(this);
    ctx.counters.partialFramePauses++;
    this.socket.pause();
  }

  /** True while the relay holds it back for a destination's sake (§7): its silence is ours. */
  flowBlocked(): boolean {
    return this.blockedBy !== undefined || this.reader.holding;
  }

  /**
   * Reads it again once nothing holds it back: first the frame it held and the bytes after it
   * (which may hold it again), then its socket.
   */
  resumeReading(afterFlowPause = true): void {
    if (this.phase === 'closed') return;
    const ctx = this.#ctx;
    if (this.blockedBy === undefined) {
      ctx.now = ctx.clock.now();
      this.#feed(undefined);
    }
    // Feeding it may have ended it (a fatal frame): read the phase again.
    if (this.closed || this.flowBlocked() || this.budgetWait) return;
    // Its silence and its stalled frame while held back were ours, not its own (§4).
    this.lastSeen = ctx.clock.now();
    if (afterFlowPause && this.frameSince > 0) this.frameSince = this.lastSeen;
    this.socket.resume();
  }

  /** Ends the TCP connection once queued bytes are out. */
  endTransport(): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end();
    // Read and discard until the peer closes, so its FIN is seen even if we had paused it.
    socket.resume();
    // Real time on purpose, not the relay's clock: this frees a socket, it is no protocol timeout.
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  /** Ends the connection for a fatal condition it caused (§9); its machine writes the Error. */
  protocolError(error: RelayConnectionErrorName, message: string): void {
    if (this.phase === 'closed') return;
    this.reader.stop();
    this.actor.send({ type: 'protocol.error', error, message });
  }

  /** A packet not allowed now (before Hello, or one only the relay sends): §9 UnexpectedPacket. */
  unexpected(type: number): void {
    const name = PACKET_TYPE_NAMES[type] ?? `type ${type}`;
    this.protocolError('UnexpectedPacket', `unexpected ${name}`);
  }

  #onFrame(type: number, frame: Uint8Array): boolean | void {
    const ctx = this.#ctx;
    ctx.counters.framesIn++;
    this.lastSeen = ctx.now;
    // The data path (§7): no decode, no machine.
    if (type === PacketType.ArbitraryData) {
      if (this.phase !== 'ready') return this.unexpected(type);
      if (frame.length < DATA_FRAME_HEAD_BYTES) return this.protocolError('MalformedFrame', 'ArbitraryData shorter than its header');
      return ctx.dataPath.relayData(this, readConnectionId(frame), frame.length, frame);
    }
    if (type === PacketType.WindowUpdate) {
      if (this.phase !== 'ready') return this.unexpected(type);
      if (frame.length !== WINDOW_UPDATE_FRAME_BYTES) return this.protocolError('MalformedFrame', 'WindowUpdate body is not 8 bytes');
      return ctx.dataPath.relayWindowUpdate(this, frame);
    }
    // Datagrams (§10): no decode, no machine; checked, stamped in place and written, or dropped.
    if (type === PacketType.Datagram) {
      if (this.phase !== 'ready') return this.unexpected(type);
      return ctx.datagramPath.relay(this, frame);
    }
    const packet = decodeFrame(frame);
    if (packet instanceof ProtocolError) return this.protocolError(protocolErrorName(packet), packet.message);
    ctx.dispatch(this, packet);
  }

  /** An ArbitraryData frame that spanned TCP chunks, as the slices it arrived in (protocol/frame-reader.ts). */
  #onDataPieces(connectionId: number, frameBytes: number, pieces: Uint8Array[]): boolean | void {
    const ctx = this.#ctx;
    ctx.counters.framesIn++;
    this.lastSeen = ctx.now;
    if (this.phase !== 'ready') return this.unexpected(PacketType.ArbitraryData);
    return ctx.dataPath.relayData(this, connectionId, frameBytes, pieces);
  }
}
