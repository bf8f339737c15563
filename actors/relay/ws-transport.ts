/**
 * A WebSocket connection seen as a RelaySocket (transport.ts), so the relay's Connection and
 * Outbound run over it unchanged (docs/PROTOCOL.md "Transports"): each write is one binary
 * message carrying the same bytes a TCP write would; incoming binary messages are the byte stream
 * the FrameReader reads, whatever their boundaries. Backpressure is the TCP socket's under the
 * WebSocket: `writableLength` is ws's `bufferedAmount` (its sender's queue plus the socket's),
 * 'drain' is the socket's, and pause() stops reading that socket. That queue counts message
 * headers besides the bytes written, so progress (`bytesTaken`) is the socket's own count.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { RelaySocket } from './transport.ts';
import { WsUnfinished } from './ws-unfinished.ts';

/**
 * Bytes one message may carry beyond the relay's largest frame at the time. A client sends one
 * frame per message (or a frame's head and payload as two), so the slack only covers a few small
 * control frames batched with a full one. Past Hello, ws refuses a bigger message (its maxPayload,
 * close code 1009); before, where the largest frame is Hello-sized, the transport does
 * (Error(FrameTooLarge)), so a connection that has not said who it is cannot have ws hold a
 * full-size message for it.
 */
export const WS_MAX_PAYLOAD_SLACK_BYTES = 4096;

/** Close code when the relay ends a WebSocket connection normally (RFC 6455 §7.4.1). */
export const WS_CLOSE_NORMAL = 1000;
/** WebSocket readyState values (the WHATWG API's, which `ws` keeps). */
const OPEN = 1;
const CLOSED = 3;

/**
 * The part of a `ws` WebSocket this uses. Declared here, not imported: @types/ws is a dev
 * dependency, and the package's published types must not need it.
 */
export interface ServerWebSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array, options: { binary: boolean }): void;
  close(code?: number): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** One client's WebSocket connection, as the relay's Connection uses a TCP socket. */
export class WsTransport extends EventEmitter implements RelaySocket {
  readonly remoteAddress: string;
  readonly #ws: ServerWebSocket;
  readonly #raw: Duplex;
  #paused = false;
  /**
   * Messages that arrived after pause(): ws's receiver finishes the TCP chunk it is parsing even
   * once the socket is paused, so this holds at most what one read brought in.
   */
  #held: Buffer[] = [];
  #flushing = false;
  /** What ws holds of messages under way, counted like a TCP frame under way (ws-unfinished.ts). */
  readonly #unfinished = new WsUnfinished();
  /**
   * Called for a text message, which the protocol does not allow (`error` undefined:
   * MalformedFrame), and for a message over frameLimit plus slack (FrameTooLarge); set by whoever
   * accepts it.
   */
  onViolation: ((message: string, error?: 'FrameTooLarge') => void) | undefined = undefined;
  /**
   * The largest frame its reader takes now while that is below the port's (before Hello);
   * undefined once ws's maxPayload is the limit. Set by whoever accepts it. @default none
   */
  frameLimit: (() => number | undefined) | undefined = undefined;

  /** `raw` is the TCP socket the upgrade came on; `remoteAddress` the client's real IP. */
  constructor(ws: ServerWebSocket, raw: Duplex, remoteAddress: string) {
    super();
    this.#ws = ws;
    this.#raw = raw;
    this.remoteAddress = remoteAddress;
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.#wsOnMessage(data, isBinary));
    ws.on('close', () => this.emit('close'));
    ws.on('error', (error: Error) => this.emit('error', error));
    raw.on('drain', () => this.emit('drain'));
    // Around ws's own 'data' listener (ws set it when it took the socket, before this runs):
    // counted before ws reads the chunk, so the messages it delivers meet the count after it;
    // then 'unfinished' tells the reader of bytes that made no whole message.
    raw.prependListener('data', (chunk: Buffer) => this.#unfinished.push(chunk));
    raw.on('data', () => this.#rawOnData());
  }

  /** After ws has read a chunk: a message too big for the reader's limit now, or bytes held. */
  #rawOnData(): void {
    const limit = this.frameLimit?.();
    const bytes = this.#unfinished.messageBytes;
    // Past Hello ws's maxPayload is the limit: ws refuses the message itself (close 1009).
    if (limit !== undefined && bytes > limit + WS_MAX_PAYLOAD_SLACK_BYTES && this.#ws.readyState === OPEN) {
      const most = limit + WS_MAX_PAYLOAD_SLACK_BYTES;
      this.onViolation?.(`a WebSocket message of ${bytes} bytes exceeds the limit of ${most} bytes (the largest frame now, ${limit} bytes, plus ${WS_MAX_PAYLOAD_SLACK_BYTES})`, 'FrameTooLarge');
      return;
    }
    this.emit('unfinished');
  }

  /** Bytes read for messages ws has not delivered yet (RelaySocket.unfinishedBytes). */
  get unfinishedBytes(): number {
    return this.#unfinished.bytes;
  }

  #wsOnMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (!isBinary) {
      this.onViolation?.('a text WebSocket message: AlphaNET frames travel in binary messages');
      return;
    }
    // binaryType is 'nodebuffer' (ws's default): a whole message is one Buffer.
    const chunk = data as Buffer;
    if (this.#paused || this.#held.length > 0) this.#held.push(chunk);
    else this.emit('data', chunk);
  }

  get writable(): boolean {
    return this.#ws.readyState === OPEN;
  }

  get destroyed(): boolean {
    return this.#ws.readyState === CLOSED;
  }

  get writableLength(): number {
    return this.#ws.bufferedAmount;
  }

  /**
   * Bytes the kernel has taken: the socket's bytes written (dispatched or buffered) less its
   * queue, both counting whole WebSocket frames. It moves only as the peer reads, whatever was
   * queued meanwhile (a Ping's header, a Pong ws sends itself).
   */
  get bytesTaken(): number {
    const raw = this.#raw as Duplex & { bytesWritten?: number };
    return (raw.bytesWritten ?? 0) - raw.writableLength;
  }

  /** One binary message. */
  write(bytes: Uint8Array): boolean {
    if (this.#ws.readyState !== OPEN) return false;
    this.#ws.send(bytes, { binary: true });
    return !this.#raw.writableNeedDrain;
  }

  /** Sends `bytes` (if any) and starts the closing handshake after what is queued. */
  end(bytes?: Uint8Array): void {
    if (bytes !== undefined) this.write(bytes);
    this.#ws.close(WS_CLOSE_NORMAL);
  }

  destroy(): void {
    this.#ws.terminate();
  }

  /** Messages written until uncork() leave in one writev of the TCP socket. */
  cork(): void {
    this.#raw.cork();
  }

  uncork(): void {
    this.#raw.uncork();
  }

  pause(): void {
    this.#paused = true;
    this.#ws.pause();
  }

  /**
   * Reads again: first the messages held since pause() (on a later tick, as a TCP socket's
   * resume() delivers, so the caller's own bookkeeping finishes first), then the socket.
   */
  resume(): void {
    this.#paused = false;
    if (this.#held.length === 0) {
      this.#ws.resume();
      return;
    }
    if (this.#flushing) return;
    this.#flushing = true;
    process.nextTick(() => {
      this.#flushing = false;
      while (!this.#paused && this.#held.length > 0) this.emit('data', this.#held.shift());
      if (!this.#paused) this.#ws.resume();
    });
  }

  setNoDelay(): void {
    // ws sets TCP_NODELAY on the socket itself.
  }
}
