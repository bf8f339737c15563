/**
 * A datagram socket (docs/CLIENT.md "Datagrams", docs/PROTOCOL.md §10): bound to a datagram
 * port of this client's virtual host, it sends messages that keep their boundaries to any
 * virtual address and yields the messages sent to its port, each with the sender the relay
 * stamped. Nothing is retried or queued without bound: a message the relay drops is gone, a
 * message arriving while the receive queue is full pushes out the oldest one (a game wants the
 * newest state, not the backlog), and a send while the relay connection is backed up is dropped
 * here rather than queued behind it. Every drop is counted in `stats`.
 */
import {
  DATAGRAM_PAYLOAD_OFFSET,
  DATAGRAM_SOURCE_IP_OFFSET,
  DATAGRAM_SOURCE_PORT_OFFSET,
  FRAME_HEADER_BYTES,
  DATAGRAM_ADDRESSES_BYTES,
  MAX_DATAGRAM_PAYLOAD_BYTES,
  encodeDatagram,
  formatIpv4,
  isPort,
  parseIpv4,
  readU16,
  readU32,
} from '../../protocol/index.ts';
import { ClientError } from './errors.ts';

/** Messages a socket keeps for a reader that has not asked for them yet; the oldest goes first. */
export const DEFAULT_DATAGRAM_RECEIVE_QUEUE = 512;
/**
 * Bytes the relay connection may have unsent before a send is dropped instead of queued: a
 * datagram behind 256 KiB of other traffic is already late (~20 ms at 100 Mbit/s).
 */
export const DATAGRAM_SEND_QUEUE_BYTES = 256 * 1024;

/** One message received. */
export interface DatagramMessage {
  /** The sender's virtual IP, as the relay stamped it. */
  address: string;
  /** The sender's datagram port. */
  port: number;
  /** The payload, boundaries kept (may be empty). A Buffer in Node, a Uint8Array in a browser. */
  bytes: Buffer;
}

const UTF8 = new TextEncoder();

/**
 * A copy of `bytes`: a Buffer where there is one (Node), else a Uint8Array (the browser bundle
 * has no Buffer, and must not import one).
 */
function copyBytes(bytes: Uint8Array): Buffer {
  const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  return NodeBuffer === undefined ? (bytes.slice() as Buffer) : NodeBuffer.from(bytes);
}

/** Counts of one socket. */
export interface DatagramStats {
  sent: number;
  bytesSent: number;
  /** Sends dropped here because the relay connection was backed up or down. */
  sendDropped: number;
  received: number;
  bytesReceived: number;
  /** Messages pushed out of a full receive queue (the oldest ones). */
  receiveDropped: number;
}

/** Options of `client.datagram()`. */
export interface DatagramOptions {
  /** Aborting closes the socket. @default none */
  signal?: AbortSignal;
  /** Messages kept for the reader; when full, the oldest is dropped. @default DEFAULT_DATAGRAM_RECEIVE_QUEUE (512) */
  receiveQueue?: number;
}

/** What a socket needs of its client (datagram-table.ts). */
export interface DatagramSocketHost {
  readonly virtualIp: number;
  /** Largest frame the relay takes (VirtualIP), or 0 while not connected. */
  readonly maxFrameBytes: number;
  readonly unflushedBytes: number;
  write(frame: Uint8Array): boolean;
  release(socket: DatagramSocket): void;
}

/** A bound datagram socket. Obtain it from `client.datagram(port)`. */
export class DatagramSocket implements AsyncIterable<DatagramMessage> {
  /** The datagram port it holds. */
  readonly port: number;
  readonly stats: DatagramStats = { sent: 0, bytesSent: 0, sendDropped: 0, received: 0, bytesReceived: 0, receiveDropped: 0 };
  readonly #host: DatagramSocketHost;
  readonly #limit: number;
  /** A ring would avoid shift(); at ≤ 512 entries shift is a memmove of pointers, cheap enough. */
  readonly #queue: DatagramMessage[] = [];
  #waiter: { resolve: (result: IteratorResult<DatagramMessage>) => void; reject: (error: Error) => void } | undefined;
  #closed = false;
  #error: Error | undefined;
  #suspended = false;
  /** The last destination parsed: a game sends to the same few addresses, so the parse is cached. */
  #lastAddress = '';
  #lastIp = 0;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.close();

  /** @internal Made by the client once the relay has bound the port. */
  constructor(host: DatagramSocketHost, port: number, options: DatagramOptions) {
    this.#host = host;
    this.port = port;
    this.#limit = Math.max(1, options.receiveQueue ?? DEFAULT_DATAGRAM_RECEIVE_QUEUE);
    this.#signal = options.signal;
    this.#signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** True once closed (by close(), the signal or the client). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends one message to `address:port` (a virtual IP and a datagram port). Returns true when it
   * was handed to the relay connection, false when it was dropped here (the connection is backed
   * up or the client is reconnecting). Loss past this point is silent. Throws ClientError
   * ERR_DATAGRAM_TOO_LARGE above MAX_DATAGRAM_PAYLOAD_BYTES (or the relay's frame limit),
   * ERR_INVALID_ARGUMENT for a bad address or port, ERR_SOCKET_STATE once closed.
   */
  send(address: string, port: number, bytes: Uint8Array | string): boolean {
    if (this.#closed) throw new ClientError('ERR_SOCKET_STATE', `datagram socket ${this.port} is closed`);
    const ip = address === this.#lastAddress ? this.#lastIp : parseIpv4(address);
    if (ip === undefined) throw new ClientError('ERR_INVALID_ARGUMENT', `not a virtual IPv4 address: "${address}"`);
    this.#lastAddress = address;
    this.#lastIp = ip;
    if (!isPort(port) || port === 0) throw new ClientError('ERR_INVALID_ARGUMENT', `not a datagram port: ${port}`);
    const payload = typeof bytes === 'string' ? UTF8.encode(bytes) : bytes;
    if (!(payload instanceof Uint8Array)) throw new ClientError('ERR_INVALID_ARGUMENT', 'send() takes a Uint8Array or a string');
    const host = this.#host;
    const max = Math.min(MAX_DATAGRAM_PAYLOAD_BYTES, (host.maxFrameBytes || Infinity) - 1 - DATAGRAM_ADDRESSES_BYTES);
    if (payload.length > max) {
      throw new ClientError('ERR_DATAGRAM_TOO_LARGE', `a datagram carries at most ${max} bytes, got ${payload.length}`);
    }
    if (this.#suspended || host.maxFrameBytes === 0 || host.unflushedBytes >= DATAGRAM_SEND_QUEUE_BYTES) {
      this.stats.sendDropped++;
      return false;
    }
    // The relay stamps the source ip (§10); ours is only what we believe it to be.
    host.write(encodeDatagram({ ip: host.virtualIp, port: this.port }, { ip, port }, payload));
    this.stats.sent++;
    this.stats.bytesSent += payload.length;
    return true;
  }

  /** @internal A Datagram frame for this port, from the relay. */
  receive(frame: Uint8Array): void {
    if (this.#closed) return;
    const message: DatagramMessage = {
      address: formatIpv4(readU32(frame, DATAGRAM_SOURCE_IP_OFFSET)),
      port: readU16(frame, DATAGRAM_SOURCE_PORT_OFFSET),
      // Copied: the frame is a view of a read buffer that may hold much more than this message.
      bytes: copyBytes(frame.subarray(DATAGRAM_PAYLOAD_OFFSET)),
    };
    this.stats.received++;
    this.stats.bytesReceived += frame.length - FRAME_HEADER_BYTES - DATAGRAM_ADDRESSES_BYTES;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      waiter.resolve({ value: message, done: false });
      return;
    }
    if (this.#queue.length >= this.#limit) {
      this.#queue.shift();
      this.stats.receiveDropped++;
    }
    this.#queue.push(message);
  }

  /** The next message; resolves done once closed (rejects if the client ended it with an error). */
  next(): Promise<IteratorResult<DatagramMessage>> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve({ value: queued, done: false });
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) return Promise.reject(new ClientError('ERR_SOCKET_STATE', 'a datagram socket has one reader at a time'));
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<DatagramMessage> {
    return {
      next: () => this.next(),
      return: async () => {
        this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** Frees the port; a waiting reader gets done. Messages still queued are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#end(undefined);
    this.#host.release(this);
  }

  /** @internal The client is reconnecting: sends are dropped until the port is bound again. */
  suspend(): void {
    this.#suspended = true;
  }

  /** @internal The port is bound again after a reconnect. */
  rebound(): void {
    this.#suspended = false;
  }

  /** @internal The client or the relay connection ended it. */
  shut(error: Error | undefined): void {
    if (this.#closed) return;
    this.#end(error);
  }

  #end(error: Error | undefined): void {
    this.#closed = true;
    this.#error = error;
    this.#queue.length = 0;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter === undefined) return;
    if (error !== undefined) waiter.reject(error);
    else waiter.resolve({ value: undefined, done: true });
  }
}
