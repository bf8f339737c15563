/**
 * One cross-relay virtual connection's bytes over NATS core, as a Node Duplex (docs/CLUSTER.md
 * "Across relays"). NATS core drops messages for a slow subscriber without telling the publisher,
 * and `publish()` has no backpressure, so the link adds both:
 *
 * - **Sequence numbers.** Every message an end sends (data, credit, end, reset) carries the next
 *   number of its direction. A receiver that sees any other number than the one it expects has
 *   lost a message: it resets the link (ERR_LINK_GAP) and tells the other end. Never silent loss,
 *   never reordering.
 * - **A credit window.** A sender may have at most `windowBytes` of data the receiving relay has
 *   not acknowledged; its `write()` waits for credit beyond that, which is the Duplex's ordinary
 *   backpressure (write() false, 'drain'). The receiver acknowledges bytes once its reader has
 *   taken them (or they sit below the readable high-water mark), in batches of a quarter window
 *   and never more often (each acknowledgement is a NATS message too).
 * - **A lost NATS connection** resets every link of it (ERR_LINK_LOST): what was published
 *   during the outage may be gone, and a virtual connection is never resumed over a hole.
 * - **Batching.** A link is a byte stream (its reader re-frames what it gets), so what is written
 *   in one turn of the event loop leaves together, in as few messages as fit
 *   (LINK_MAX_PIECE_BYTES each), published from one buffer in one go so that nats.js writes
 *   them to its socket at once; what arrives in one turn reaches the reader as one chunk.
 *
 * Wire format of one message: u8 kind, u32 sequence, then for DATA the bytes, for CREDIT a u32
 * byte count, for RESET a UTF-8 reason.
 */
import { Duplex } from 'node:stream';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { AlphanetError } from '../../../protocol/errors.ts';
import { pubBatcher, type PubBatch } from './pub-batch.ts';

/** Unacknowledged bytes a sender may have in flight: 4 MiB, a 16 MiB protocol window's quarter. */
export const DEFAULT_LINK_WINDOW_BYTES = 4 * 1024 * 1024;
/**
 * Largest data message: 16 KiB (or less when the server's max_payload is smaller). Small
 * messages cost the least per byte across relays, although each is a delivery in nats-server
 * and a callback here: nats.js gathers a message that spans two socket reads (64 KiB each) into
 * a buffer it grows by doubling, zero-filled, which for a 512 KiB message meant about two zeroed
 * and two copied bytes per byte received, and nats-server likewise copies a message larger than
 * its read buffer before delivering it. A 16 KiB message lies inside one read three times in
 * four. The sender still writes a turn's messages to its socket in one write (one buffer,
 * cluster.ts raises nats.js's flush threshold), and the receiver passes a turn's messages to its
 * reader as one chunk (#deliver). Measured (bench/tools/cluster-across.ts, 256 MiB, 3 runs each
 * alternating, load 4-5): relays 4844/4883/4414 → 4375/4258/4688 µs per MiB, nats-server
 * 3672/3633/3633 → 3086/2656/2813, against 512 KiB messages published one by one.
 */
export const LINK_MAX_PIECE_BYTES = 16 * 1024;
/**
 * The Duplex's high-water marks (the readable one at most a quarter of the window): what a
 * reader may hold before credit stops going back, and a writer before write() says wait.
 */
const LINK_STREAM_HIGH_WATER_BYTES = 512 * 1024;
/** Where link subjects live: `alphanet.link.<link id>.<end>`. */
export const LINK_SUBJECT_PREFIX = 'alphanet.link';

const DATA = 0;
const CREDIT = 1;
const END = 2;
const RESET = 3;
const HEADER_BYTES = 5;

export type LinkErrorCode =
  /** A message was missing or out of order (NATS dropped it: a slow subscriber). */
  | 'ERR_LINK_GAP'
  /** The NATS connection was lost or closed. */
  | 'ERR_LINK_LOST'
  /** The other end reset the link (its reason is in the message). */
  | 'ERR_LINK_RESET'
  /** The other end sent more than the credit it was given, or a message that is not one of ours. */
  | 'ERR_LINK_PROTOCOL';

/** Why a link was reset; the relay closes the virtual connection with SocketClosed(Error) and logs this. */
export class LinkError extends AlphanetError {
  declare readonly code: LinkErrorCode;
  constructor(code: LinkErrorCode, message: string) {
    super(code, message);
  }
}

export interface NatsLinkOptions {
  /** A subject token naming the connection, the same at both ends: `r1-42`. */
  id: string;
  /** This end's name ('a' or 'b'); the other end is the other one. */
  end: 'a' | 'b';
  /** @default DEFAULT_LINK_WINDOW_BYTES (4 MiB) */
  windowBytes?: number;
}

/** Subject an end of a link listens on. */
export const linkSubject = (id: string, end: 'a' | 'b'): string => `${LINK_SUBJECT_PREFIX}.${id}.${end}`;

/** One end of a link; see the file comment. Subscribed when constructed (await `ready`). */
export class NatsLink extends Duplex {
  readonly id: string;
  /** Resolves once the server has this end's subscription, so the other end may send. */
  readonly ready: Promise<void>;
  readonly #nc: NatsConnection;
  readonly #out: string;
  readonly #sub: Subscription;
  readonly #window: number;
  #sendSeq = 0;
  #recvSeq = 0;
  #credit: number;
  /** Bytes received and taken by the reader, not yet acknowledged. */
  #toAck = 0;
  /** Bytes received beyond what we acknowledged: never more than the window we gave. */
  #unacked = 0;
  #readerWants = true;
  /** Data messages of this turn, not yet pushed: they go to the reader together (#deliver). */
  #arrived: Buffer[] = [];
  #arrivedBytes = 0;
  #deliverScheduled = false;
  readonly #deliverLater = (): void => {
    this.#deliverScheduled = false;
    this.#deliver();
  };
  /** Bytes written and not yet published (still ours to send, in order). */
  #queued: Buffer[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  /** The callback of a write that overfilled the queue: called once the credit lets it drain. */
  #held: ((error?: Error | null) => void) | undefined;
  /** _final's callback, waiting for the queue to empty. */
  #ending: (() => void) | undefined;
  #peerReset = false;
  /** Largest data message: LINK_MAX_PIECE_BYTES, or less when the server allows less. */
  readonly #piece: number;
  /** The turn's data messages as one buffer of PUB commands (pub-batch.ts), where nats.js allows. */
  readonly #batcher: PubBatch | undefined;

  constructor(nc: NatsConnection, options: NatsLinkOptions) {
    const window = options.windowBytes ?? DEFAULT_LINK_WINDOW_BYTES;
    super({ allowHalfOpen: true, readableHighWaterMark: Math.min(LINK_STREAM_HIGH_WATER_BYTES, window / 4), writableHighWaterMark: LINK_STREAM_HIGH_WATER_BYTES });
    this.id = options.id;
    this.#nc = nc;
    this.#window = window;
    const maxPayload = nc.info?.max_payload;
    this.#piece = maxPayload !== undefined && maxPayload > HEADER_BYTES ? Math.min(LINK_MAX_PIECE_BYTES, maxPayload - HEADER_BYTES) : LINK_MAX_PIECE_BYTES;
    if (this.#window < 4 * LINK_MAX_PIECE_BYTES) throw new RangeError(`a link window must be at least ${4 * LINK_MAX_PIECE_BYTES} bytes`);
    this.#credit = this.#window;
    this.#out = linkSubject(options.id, options.end === 'a' ? 'b' : 'a');
    this.#batcher = pubBatcher(nc, this.#out);
    this.#sub = nc.subscribe(linkSubject(options.id, options.end), { callback: (error, msg) => this.#onMessage(error, msg) });
    this.ready = nc.flush();
    this.ready.catch(() => {});
    void nc.closed().then(() => this.#lost('the NATS connection closed'));
  }

  /** The NATS connection dropped: every link of it is reset (NatsLinkHub calls this). */
  lost(why: string): void {
    this.#lost(why);
  }

  #lost(why: string): void {
    if (!this.destroyed) this.destroy(new LinkError('ERR_LINK_LOST', `cross-relay link ${this.id} lost: ${why}; bytes sent meanwhile may be gone, so the connection is reset`));
  }

  /** A message of `kind` with room for `bodyBytes`, numbered with the next sequence number. */
  #message(kind: number, bodyBytes: number): Buffer {
    const message = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes);
    message[0] = kind;
    message.writeUInt32BE(this.#sendSeq, 1);
    this.#sendSeq = (this.#sendSeq + 1) >>> 0;
    return message;
  }

  /** Publishes a control message; false (and the link reset) when the connection refuses it. */
  #publish(kind: number, body?: Uint8Array): boolean {
    const message = this.#message(kind, body?.length ?? 0);
    if (body) message.set(body, HEADER_BYTES);
    try {
      this.#nc.publish(this.#out, message);
      return true;
    } catch (error) {
      // Closing or draining under us (its close is on its way to every link): reset, never throw
      // from the timer or the callback that got here.
      this.#lost((error as Error).message);
      return false;
    }
  }

  #onMessage(error: Error | null, msg: Msg): void {
    if (this.destroyed) return;
    if (error) return this.#lost(error.message);
    const data = msg.data;
    if (data.length < HEADER_BYTES) return this.#fail('ERR_LINK_PROTOCOL', `a ${data.length}-byte message is not a link message`);
    const view = Buffer.from(data.buffer, data.byteOffset, data.length);
    const seq = view.readUInt32BE(1);
    if (seq !== this.#recvSeq) {
      return this.#fail('ERR_LINK_GAP', `message ${seq} arrived where ${this.#recvSeq} was expected: NATS dropped messages (a slow subscriber)`);
    }
    this.#recvSeq = (this.#recvSeq + 1) >>> 0;
    switch (view[0]) {
      case DATA: {
        const bytes = view.subarray(HEADER_BYTES);
        this.#unacked += bytes.length;
        if (this.#unacked > this.#window) return this.#fail('ERR_LINK_PROTOCOL', `the other end sent ${this.#unacked} bytes on a ${this.#window}-byte window`);
        this.#arrived.push(bytes);
        this.#arrivedBytes += bytes.length;
        if (!this.#deliverScheduled) {
          this.#deliverScheduled = true;
          setImmediate(this.#deliverLater);
        }
        return;
      }
      case CREDIT:
        this.#credit += view.readUInt32BE(HEADER_BYTES);
        this.#send();
        return;
      case END:
        // After the bytes before it.
        this.#deliver();
        this.push(null);
        return;
      case RESET:
        this.#peerReset = true;
        // Both directions are done already: the other end is only closing its side.
        if (this.readableEnded && this.writableFinished) return void this.destroy();
        this.destroy(new LinkError('ERR_LINK_RESET', `the other relay reset link ${this.id}: ${view.subarray(HEADER_BYTES).toString('utf8')}`));
        return;
      default:
        return this.#fail('ERR_LINK_PROTOCOL', `unknown link message kind ${view[0]}`);
    }
  }

  /**
   * Pushes the data messages that arrived in this turn of the event loop as one chunk. A socket
   * read from nats-server holds several messages (they are small, LINK_MAX_PIECE_BYTES); passed
   * on one by one, each would be a write into the stand-in, a read by the relay and a writev to
   * the destination socket. Together they cost one copy and one of each.
   */
  #deliver(): void {
    const arrived = this.#arrived;
    if (arrived.length === 0 || this.destroyed) return;
    const bytes = arrived.length === 1 ? arrived[0] : Buffer.concat(arrived, this.#arrivedBytes);
    this.#arrived = [];
    this.#arrivedBytes = 0;
    this.#readerWants = this.push(bytes);
    this.#toAck += bytes.length;
    if (this.#readerWants) this.#acknowledge();
  }

  /**
   * Gives credit back in batches of a quarter window, never more often: each CREDIT is a NATS
   * message, a socket write here and at the sender's relay and a delivery in nats-server. Acking
   * whenever the reader drained sent one per DATA message (measured). A quarter window held back
   * never stalls the sender: it still has three quarters, and a message is at most a quarter.
   */
  #acknowledge(): void {
    if (this.#toAck < this.#window / 4) return;
    const body = Buffer.allocUnsafe(4);
    body.writeUInt32BE(this.#toAck, 0);
    this.#unacked -= this.#toAck;
    this.#toAck = 0;
    this.#publish(CREDIT, body);
  }

  #fail(code: LinkErrorCode, why: string): void {
    this.destroy(new LinkError(code, `cross-relay link ${this.id}: ${why}`));
  }

  override _read(): void {
    this.#readerWants = true;
    // The reader took what we pushed: what it took counts towards the next batch.
    if (!this.destroyed) this.#acknowledge();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#queued.push(chunk);
    this.#queuedBytes += chunk.length;
    // Taken while at most a high-water mark's worth waits; beyond that the writer waits for credit.
    if (this.#queuedBytes <= LINK_STREAM_HIGH_WATER_BYTES) callback();
    else this.#held = callback;
    this.#scheduleFlush();
  }

  /**
   * What was written in one turn of the event loop leaves together, at the next check phase:
   * the frames of a burst are published in one go (as many messages as they fill, from one
   * buffer), which nats.js writes to its socket in one write, instead of a message, a socket
   * write and a nats-server delivery per frame.
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#queuedBytes === 0) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#send();
    });
  }

  /**
   * Publishes what is queued while the credit lasts: every message is a view of one buffer the
   * queued chunks are copied into once (nats.js copies them once more, into its socket write).
   */
  #send(): void {
    if (this.destroyed) return;
    const piece = this.#piece;
    // All of it when the credit allows; else as many whole messages as it allows.
    const sendable = this.#queuedBytes <= this.#credit ? this.#queuedBytes : this.#credit - (this.#credit % piece);
    if (sendable > 0) {
      const messages = Math.ceil(sendable / piece);
      this.#credit -= sendable;
      this.#queuedBytes -= sendable;
      try {
        if (this.#batcher !== undefined) this.#publishBatch(this.#batcher, messages, sendable);
        else this.#publishEach(messages, sendable);
      } catch (error) {
        // Closing or draining under us, or a server allowing smaller messages: reset, never throw from a timer.
        return this.#lost((error as Error).message);
      }
    }
    if (this.#queuedBytes <= LINK_STREAM_HIGH_WATER_BYTES && this.#held) {
      const held = this.#held;
      this.#held = undefined;
      held();
    }
    if (this.#queuedBytes === 0 && this.#ending) {
      const ending = this.#ending;
      this.#ending = undefined;
      if (this.#publish(END)) ending();
    }
  }

  /** Writes a data message at `at`: its header, then the next `size` queued bytes; returns its end. */
  #fill(batch: Buffer, at: number, size: number): number {
    batch[at] = DATA;
    batch.writeUInt32BE(this.#sendSeq, at + 1);
    this.#sendSeq = (this.#sendSeq + 1) >>> 0;
    at += HEADER_BYTES;
    const end = at + size;
    const queued = this.#queued;
    while (at < end) {
      const chunk = queued[0];
      const take = Math.min(chunk.length, end - at);
      chunk.copy(batch, at, 0, take);
      at += take;
      if (take === chunk.length) queued.shift();
      else queued[0] = chunk.subarray(take);
    }
    return at;
  }

  /** The messages written as PUB commands into one buffer, queued in nats.js as its one piece. */
  #publishBatch(batcher: PubBatch, messages: number, sendable: number): void {
    const piece = this.#piece;
    const batch = Buffer.allocUnsafe(batcher.capacity(messages, sendable + messages * HEADER_BYTES, piece + HEADER_BYTES));
    let at = 0;
    let left = sendable;
    for (let m = 0; m < messages; m++) {
      const size = Math.min(left, piece);
      left -= size;
      at = batcher.startMessage(batch, at, HEADER_BYTES + size);
      at = batcher.endMessage(batch, this.#fill(batch, at, size));
    }
    batcher.send(batch, at, messages, sendable + messages * HEADER_BYTES, HEADER_BYTES + Math.min(piece, sendable));
  }

  /** The messages published one by one, each a view of one buffer the bytes are copied into once. */
  #publishEach(messages: number, sendable: number): void {
    const piece = this.#piece;
    const batch = Buffer.allocUnsafe(messages * HEADER_BYTES + sendable);
    let at = 0;
    let left = sendable;
    for (let m = 0; m < messages; m++) {
      const size = Math.min(left, piece);
      left -= size;
      const start = at;
      at = this.#fill(batch, at, size);
      this.#nc.publish(this.#out, batch.subarray(start, at));
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    // END follows the last bytes, which may still wait for credit.
    this.#ending = callback;
    this.#send();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Both directions ended cleanly: nothing to tell. Otherwise the other end must not wait on us.
    const clean = error == null && this.writableFinished && this.readableEnded;
    if (!this.#peerReset && !clean) {
      // Tell the other end, unless it told us; a closed connection can publish nothing.
      try {
        if (!this.#nc.isClosed()) this.#publish(RESET, Buffer.from(error?.message ?? 'closed', 'utf8'));
      } catch {
        // Nothing more can be said over a connection that is going away.
      }
    }
    this.#sub.unsubscribe();
    this.#arrived = [];
    this.#arrivedBytes = 0;
    this.#queued = [];
    this.#queuedBytes = 0;
    const held = this.#held;
    this.#held = undefined;
    held?.(error);
    callback(error);
  }
}

/**
 * The links of one NATS connection: one watcher of the connection's status resets them all when
 * it drops (docs/CLUSTER.md: a virtual connection is never carried across a NATS outage).
 */
export class NatsLinkHub {
  readonly #nc: NatsConnection;
  readonly #links = new Set<NatsLink>();

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect' || status.type === 'slowConsumer') {
          const why = status.type === 'disconnect' ? `disconnected from NATS ${status.server}` : 'NATS reported this relay a slow consumer';
          for (const link of [...this.#links]) link.lost(why);
        }
      }
    })().catch(() => {});
  }

  /** Opens this relay's end of link `id`. */
  open(options: NatsLinkOptions): NatsLink {
    const link = new NatsLink(this.#nc, options);
    this.#links.add(link);
    link.once('close', () => this.#links.delete(link));
    return link;
  }

  get size(): number {
    return this.#links.size;
  }
}
