/**
 * The client's datagram ports (docs/PROTOCOL.md §10): DatagramBind through the session, the
 * sockets by port, each received Datagram handed to its socket by destination port, and what a
 * lost or regained relay connection means for them (suspended, then bound again; or shut).
 */
import {
  BindStatus,
  DATAGRAM_DESTINATION_PORT_OFFSET,
  PacketType,
  encodePacket,
  formatIpv4,
  isPort,
  readU16,
} from '../../protocol/index.ts';
import { ClientError } from './errors.ts';
import type { RelaySession } from './session.ts';
import { DatagramSocket, type DatagramOptions, type DatagramSocketHost } from './datagram.ts';

/** What the table needs of its client. */
export interface DatagramTableHost {
  /** The live session, if connected. */
  session(): RelaySession | undefined;
  /** The live session, or the error saying why there is none. */
  requireSession(): RelaySession;
  requestTimeoutMs: number;
}

/** Datagram sockets of one client, by port. */
export class DatagramTable {
  readonly #host: DatagramTableHost;
  readonly #sockets = new Map<number, DatagramSocket>();
  readonly #socketHost: DatagramSocketHost;
  /**
   * Frames sent since the event loop last turned, written together by #flush in one writev: a
   * game or a UDP tunnel sends datagrams in bursts (libuv reads up to 32 UDP datagrams per poll),
   * and a syscall per datagram was most of a tunnel's CPU. The delay is one loop turn.
   */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #flushScheduled = false;
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const frames = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    if (frames.length > 0) this.#host.session()?.writeFrames(frames);
  };

  constructor(host: DatagramTableHost) {
    this.#host = host;
    const table = this;
    this.#socketHost = {
      get virtualIp() {
        return host.session()?.virtualIp ?? 0;
      },
      get maxFrameBytes() {
        return host.session()?.maxFrameBytes ?? 0;
      },
      get unflushedBytes() {
        return (host.session()?.unflushedBytes ?? 0) + table.#batchBytes;
      },
      write: (frame) => table.#write(frame),
      release: (socket) => table.#release(socket),
    };
  }

  /** Binds datagram port `port` (0: an ephemeral one) and resolves with its socket. */
  async open(port: number, options: DatagramOptions = {}): Promise<DatagramSocket> {
    if (!isPort(port)) throw new ClientError('ERR_INVALID_ARGUMENT', `not a port: ${port}`);
    options.signal?.throwIfAborted();
    const bound = await this.#bind(port);
    if (options.signal?.aborted) {
      this.#host.session()?.write(encodePacket({ type: PacketType.DatagramUnbind, port: bound }));
      throw options.signal.reason;
    }
    const socket = new DatagramSocket(this.#socketHost, bound, options);
    this.#sockets.set(bound, socket);
    return socket;
  }

  /** A Datagram frame from the relay: to the socket of its destination port, or dropped. */
  receive(frame: Uint8Array): void {
    this.#sockets.get(readU16(frame, DATAGRAM_DESTINATION_PORT_OFFSET))?.receive(frame);
  }

  /** The relay connection is gone: sockets wait for the next one, or end with `error`. */
  lost(willReconnect: boolean, error: Error): void {
    for (const socket of this.#sockets.values()) {
      if (willReconnect) socket.suspend();
      else socket.shut(error);
    }
    if (!willReconnect) this.#sockets.clear();
  }

  /** A new relay connection: each socket claims its port again, or ends with why it cannot. */
  reconnected(): void {
    for (const [port, socket] of this.#sockets) {
      this.#bind(port).then(
        () => socket.rebound(),
        (error: Error) => {
          this.#sockets.delete(port);
          socket.shut(error);
        },
      );
    }
  }

  /** The client closed: every socket ends. */
  closed(error: Error | undefined): void {
    for (const socket of this.#sockets.values()) socket.shut(error);
    this.#sockets.clear();
  }

  #write(frame: Uint8Array): boolean {
    if (this.#host.session() === undefined) return false;
    this.#batch.push(frame);
    this.#batchBytes += frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // After this turn's I/O (setImmediate); a browser has no setImmediate: the next task.
      if (typeof setImmediate === 'function') setImmediate(this.#flush);
      else setTimeout(this.#flush, 0);
    }
    return true;
  }

  #release(socket: DatagramSocket): void {
    if (this.#sockets.get(socket.port) !== socket) return;
    this.#sockets.delete(socket.port);
    // Datagrams this socket sent in this turn go first: written after the unbind, the relay
    // would take them for a port no longer bound.
    if (this.#batch.length > 0) this.#flush();
    this.#host.session()?.write(encodePacket({ type: PacketType.DatagramUnbind, port: socket.port }));
  }

  async #bind(port: number): Promise<number> {
    const session = this.#host.requireSession();
    const what = `datagram bind ${port}`;
    const answer = await session.request((requestId) => ({ type: PacketType.DatagramBind, requestId, port }), this.#host.requestTimeoutMs, what);
    if (answer.type !== PacketType.BindResponse) throw new ClientError('ERR_REQUEST_FAILED', `${what}: unexpected answer`);
    switch (answer.status) {
      case BindStatus.Ok:
        return answer.port;
      case BindStatus.AddressInUse:
        throw new ClientError('ERR_ADDRESS_IN_USE', `datagram port ${port} of ${formatIpv4(session.virtualIp)} is already bound`);
      case BindStatus.LimitReached:
        throw new ClientError('ERR_SOCKET_LIMIT', `${what}: this connection holds the relay's maximum of sockets`);
      default:
        throw new ClientError('ERR_NO_FREE_PORT', `${what}: the relay has no free ephemeral datagram port`);
    }
  }
}
