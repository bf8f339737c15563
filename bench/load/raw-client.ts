/**
 * A lean protocol client for load generation: speaks docs/PROTOCOL.md directly with the codec
 * in protocol/, light enough that ten thousand fit in one process. It does what a conforming
 * client must (Hello, Pong, binding, answering status and connection requests, flow-control
 * windows) and nothing more: no machines, no retries, no logging.
 */
import net from 'node:net';
import { EventEmitter } from 'eventemitter3';
import {
  ARBITRARY_DATA_HEADER_BYTES,
  BindStatus,
  CloseReason,
  ConnectionStatus,
  DEFAULT_MAX_FRAME_BYTES,
  INITIAL_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  PROTOCOL_VERSION,
  PacketType,
  SocketStatus,
  FrameReader,
  encodeArbitraryData,
  encodeArbitraryDataHeader,
  encodePacket,
  decodeFrame,
  ProtocolError,
  AlphanetError,
  ERROR_CODE_NAMES,
  FAILURE_REASON_NAMES,
  CONNECTION_STATUS_NAMES,
  SOCKET_STATUS_NAMES,
  BIND_STATUS_NAMES,
  type Packet,
  type WireAddress,
} from '../../protocol/index.ts';
import { WINDOW_GROWTH_FACTOR } from '../../actors/client/connection.ts';

/** Payloads at most this big are copied into one frame; larger ones are written header + payload (writev). */
const COPY_PAYLOAD_BELOW_BYTES = 16 * 1024;
/** The receiver grants window back once this much is consumed (a quarter window: few updates, no stall). */
export const WINDOW_UPDATE_THRESHOLD_BYTES = INITIAL_WINDOW_BYTES / 4;
/** How long Hello may wait for VirtualIP by default. */
export const DEFAULT_HELLO_TIMEOUT_MS = 20_000;

/** A request the relay or the target refused; `code` says which answer came back. */
export class LoadClientError extends AlphanetError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

export interface RawClientOptions {
  host: string;
  port: number;
  /** Source address: the client's real IP as the relay sees it. */
  localAddress: string;
  /** @default DEFAULT_HELLO_TIMEOUT_MS */
  helloTimeoutMs?: number;
  /** Accept incoming connection requests on listening ports. @default true */
  accept?: boolean;
}

type ClientEvents = {
  connection: [VirtualConnection];
  close: [];
  error: [Error];
};

/** One protocol connection to the relay. */
export class RawClient extends EventEmitter<ClientEvents> {
  readonly socket: net.Socket;
  virtualIp = 0;
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  /** The Error packet the relay sent, if any. */
  lastError: { code: number; message: string } | undefined;
  accept: boolean;
  readonly #parser: FrameReader;
  readonly #pending = new Map<number, (packet: Packet) => void>();
  readonly #pings = new Map<number, (rttMs: number) => void>();
  readonly #listening = new Set<number>();
  readonly #bound = new Set<number>();
  readonly connections = new Map<number, VirtualConnection>();
  readonly #wantDrain = new Set<VirtualConnection>();
  #nextRequestId = 1;
  #nextNonce = 1;
  #hello: ((packet: Packet | Error) => void) | undefined;
  #closed = false;

  private constructor(socket: net.Socket, accept: boolean) {
    super();
    this.socket = socket;
    this.accept = accept;
    // The framing core's payload stream (protocol/frame-reader.ts): payloads come out as slices of
    // the socket's chunks, never copied, so a load client cannot become the bottleneck it observes.
    this.#parser = new FrameReader(
      {
        // Slices of the Buffers pushed below, so Buffers themselves.
        payload: (connectionId, payload) => this.connections.get(connectionId)?.receive(payload as Buffer),
        frame: (_type, frame) => this.#onControl(frame),
      },
      { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES },
    );
    socket.on('data', (chunk: Buffer) => {
      const error = this.#parser.push(chunk);
      if (error) this.#fail(error);
    });
    socket.on('drain', () => {
      for (const connection of this.#wantDrain) {
        if (!connection.blocked) {
          this.#wantDrain.delete(connection);
          connection.onDrain();
        }
      }
    });
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#onClose());
  }

  /** Connects, says Hello and resolves once the relay has answered VirtualIP. */
  static async connect(options: RawClientOptions): Promise<RawClient> {
    const socket = net.connect({ host: options.host, port: options.port, localAddress: options.localAddress, noDelay: true });
    const client = new RawClient(socket, options.accept ?? true);
    const timeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LoadClientError('ERR_BENCH_HELLO_TIMEOUT', `no VirtualIP within ${timeoutMs} ms (${options.localAddress})`));
      }, timeoutMs);
      client.#hello = (answer) => {
        clearTimeout(timer);
        client.#hello = undefined;
        if (answer instanceof Error) reject(answer);
        else if (answer.type === PacketType.VirtualIp) {
          client.virtualIp = answer.ip;
          client.maxFrameBytes = answer.maxFrameBytes;
          resolve();
        } else reject(new LoadClientError('ERR_BENCH_HELLO', `relay answered Hello with type ${answer.type}`));
      };
      socket.write(encodePacket({ type: PacketType.Hello, version: PROTOCOL_VERSION }));
    });
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Largest ArbitraryData payload the relay accepts (docs/PROTOCOL.md §1: maxFrameBytes − 9 with the header). */
  get maxPayloadBytes(): number {
    return this.maxFrameBytes - (ARBITRARY_DATA_HEADER_BYTES - 4);
  }

  /** Reserves a port of this client's virtual host (0 = ephemeral) and resolves with it. */
  async bind(port: number): Promise<number> {
    const answer = await this.#request((requestId) => ({ type: PacketType.BindRequest, requestId, port }));
    if (answer.type !== PacketType.BindResponse || answer.status !== BindStatus.Ok) {
      const status = answer.type === PacketType.BindResponse ? BIND_STATUS_NAMES[answer.status] : `type ${answer.type}`;
      throw new LoadClientError('ERR_BENCH_BIND', `bind ${port} refused: ${status}`);
    }
    this.#bound.add(answer.port);
    return answer.port;
  }

  /** Binds `port` and answers status and connection requests for it as a listener. */
  async listen(port: number): Promise<number> {
    const bound = await this.bind(port);
    this.#listening.add(bound);
    return bound;
  }

  /**
   * The handshake of docs/PROTOCOL.md §6 from an already bound `sourcePort`: status request,
   * then connection request; resolves with the accepted connection.
   */
  async open(sourcePort: number, destination: WireAddress): Promise<VirtualConnection> {
    const source = { ip: this.virtualIp, port: sourcePort };
    const status = await this.#request((requestId) => ({
      type: PacketType.SocketStatusRequest,
      requestId,
      source,
      destination,
    }));
    if (status.type !== PacketType.SocketStatusResponse || status.status !== SocketStatus.Listening) {
      throw refusal('status', status);
    }
    const answer = await this.#request((requestId) => ({
      type: PacketType.SocketConnectionRequest,
      requestId,
      connectionId: 0,
      source,
      destination,
    }));
    if (answer.type !== PacketType.SocketConnectionResponse || answer.status !== ConnectionStatus.Accepted) {
      throw refusal('connection', answer);
    }
    return this.#register(answer.connectionId);
  }

  /** Round trip of a Ping to the relay, in milliseconds. */
  ping(): Promise<number> {
    const nonce = this.#nextNonce++ >>> 0;
    const start = performance.now();
    return new Promise((resolve) => {
      this.#pings.set(nonce, () => resolve(performance.now() - start));
      this.socket.write(encodePacket({ type: PacketType.Ping, nonce }));
    });
  }

  /** Sends a packet as it is. */
  send(packet: Packet): boolean {
    return this.socket.write(encodePacket(packet));
  }

  /** Closes the TCP connection. */
  close(): void {
    this.socket.destroy();
  }

  /** Resolves once the TCP connection has closed. */
  closedPromise(): Promise<void> {
    return this.#closed ? Promise.resolve() : new Promise((resolve) => this.once('close', resolve));
  }

  /** @internal a connection could not write everything: call its onDrain when it can. */
  waitDrain(connection: VirtualConnection): void {
    this.#wantDrain.add(connection);
  }

  /** @internal */
  forget(connection: VirtualConnection): void {
    this.connections.delete(connection.id);
    this.#wantDrain.delete(connection);
  }

  #register(connectionId: number): VirtualConnection {
    const connection = new VirtualConnection(this, connectionId);
    this.connections.set(connectionId, connection);
    return connection;
  }

  #request(make: (requestId: number) => Packet): Promise<Packet> {
    const requestId = this.#nextRequestId++ >>> 0;
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new LoadClientError('ERR_BENCH_CLOSED', 'client connection closed'));
        return;
      }
      this.#pending.set(requestId, resolve);
      this.socket.write(encodePacket(make(requestId)));
    });
  }

  #onControl(frame: Uint8Array): void {
    const packet = decodeFrame(frame);
    if (packet instanceof ProtocolError) {
      this.#fail(packet);
      return;
    }
    switch (packet.type) {
      case PacketType.VirtualIp:
        this.#hello?.(packet);
        return;
      case PacketType.Ping:
        this.socket.write(encodePacket({ type: PacketType.Pong, nonce: packet.nonce }));
        return;
      case PacketType.Pong: {
        const done = this.#pings.get(packet.nonce);
        this.#pings.delete(packet.nonce);
        done?.(0);
        return;
      }
      case PacketType.Error:
        this.lastError = { code: packet.code, message: packet.message };
        this.#hello?.(new LoadClientError('ERR_BENCH_RELAY_ERROR', `relay error ${ERROR_CODE_NAMES[packet.code]}: ${packet.message}`));
        return;
      case PacketType.BindResponse:
      case PacketType.SocketStatusResponse:
      case PacketType.SocketConnectionResponse:
      case PacketType.RequestFailed: {
        const done = this.#pending.get(packet.requestId);
        if (done === undefined) {
          // A forwarded SocketStatusResponse/ConnectionResponse never reaches a target, so an
          // unknown id is a relay bug worth failing on.
          this.#fail(new LoadClientError('ERR_BENCH_UNEXPECTED', `answer to unknown request ${packet.requestId}`));
          return;
        }
        this.#pending.delete(packet.requestId);
        done(packet);
        return;
      }
      case PacketType.SocketStatusRequest: {
        const port = packet.destination.port;
        const status = this.#listening.has(port)
          ? SocketStatus.Listening
          : this.#bound.has(port)
            ? SocketStatus.NotListening
            : SocketStatus.NotBound;
        this.send({ type: PacketType.SocketStatusResponse, requestId: packet.requestId, status });
        return;
      }
      case PacketType.SocketConnectionRequest: {
        const listening = this.#listening.has(packet.destination.port);
        const status = !listening ? ConnectionStatus.NotListening : this.accept ? ConnectionStatus.Accepted : ConnectionStatus.Denied;
        const connection = status === ConnectionStatus.Accepted ? this.#register(packet.connectionId) : undefined;
        this.send({ type: PacketType.SocketConnectionResponse, requestId: packet.requestId, connectionId: packet.connectionId, status });
        if (connection) this.emit('connection', connection);
        return;
      }
      case PacketType.WindowUpdate:
        {
          const connection = this.connections.get(packet.connectionId);
          if (packet.bytes === 0) connection?.peerBlocked();
          else connection?.grant(packet.bytes);
        }
        return;
      case PacketType.SocketEnd:
        this.connections.get(packet.connectionId)?.onEnd();
        return;
      case PacketType.SocketClosed: {
        const connection = this.connections.get(packet.connectionId);
        if (connection) {
          this.forget(connection);
          connection.closedBy(packet.reason);
        }
        return;
      }
      default:
        this.#fail(new LoadClientError('ERR_BENCH_UNEXPECTED', `unexpected packet type ${packet.type} from relay`));
    }
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#hello?.(error);
    this.socket.destroy();
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hello?.(new LoadClientError('ERR_BENCH_CLOSED', 'relay closed the connection before VirtualIP'));
    const closed = new LoadClientError('ERR_BENCH_CLOSED', 'client connection closed');
    for (const done of this.#pending.values()) {
      done({ type: PacketType.RequestFailed, requestId: 0, reason: 0 });
    }
    this.#pending.clear();
    for (const connection of this.connections.values()) connection.closedBy(CloseReason.PeerDisconnected);
    this.connections.clear();
    void closed;
    this.emit('close');
  }
}

function refusal(step: string, answer: Packet): LoadClientError {
  switch (answer.type) {
    case PacketType.RequestFailed:
      return new LoadClientError('ERR_BENCH_REQUEST_FAILED', `${step} request failed: ${FAILURE_REASON_NAMES[answer.reason] ?? answer.reason}`);
    case PacketType.SocketStatusResponse:
      return new LoadClientError('ERR_BENCH_NOT_LISTENING', `status: ${SOCKET_STATUS_NAMES[answer.status] ?? answer.status}`);
    case PacketType.SocketConnectionResponse:
      return new LoadClientError('ERR_BENCH_REFUSED', `connection: ${CONNECTION_STATUS_NAMES[answer.status] ?? answer.status}`);
    default:
      return new LoadClientError('ERR_BENCH_UNEXPECTED', `${step}: unexpected answer type ${answer.type}`);
  }
}

/**
 * One end of an accepted socket connection, with the window of docs/PROTOCOL.md §7 as the client
 * library keeps it: never more payload in flight than the peer granted; a sender out of credit
 * says so once per stall (a zero-byte WindowUpdate), and a receiver that keeps up grows the window
 * it grants ×WINDOW_GROWTH_FACTOR up to MAX_WINDOW_BYTES, so a flow over a longer path (across
 * relays) is measured as the library would run it, not held to the initial window.
 */
export class VirtualConnection {
  readonly id: number;
  readonly #client: RawClient;
  #window = INITIAL_WINDOW_BYTES;
  #queue: Uint8Array[] = [];
  #consumed = 0;
  #open = true;
  /** The peer was told once per stall that this end waits on its credit (§7). */
  #blockedSignalled = false;
  /** The window this end grants, grown as the library's is when the peer is window-limited (§7). */
  #receiveWindow = INITIAL_WINDOW_BYTES;
  /** `received` when #receiveWindow last grew. */
  #grewAt = 0;
  /** Payload bytes received. */
  received = 0;
  /** When false the receiver grants no window back (a frozen application). @default true */
  autoGrant = true;
  onData: (payload: Buffer) => void = () => {};
  onDrain: () => void = () => {};
  onEnd: () => void = () => {};
  onClose: (reason: number) => void = () => {};
  closeReason: number | undefined;

  constructor(client: RawClient, id: number) {
    this.#client = client;
    this.id = id;
  }

  get open(): boolean {
    return this.#open;
  }

  /** True while payload waits for window or the TCP socket needs to drain. */
  get blocked(): boolean {
    return this.#queue.length > 0 || this.#client.socket.writableNeedDrain;
  }

  /**
   * Sends payload, split to fit the window and the frame limit. Returns false when the caller
   * should wait for onDrain before writing more (the rest is queued, not lost).
   */
  write(payload: Uint8Array): boolean {
    if (!this.#open) return false;
    if (this.#queue.length > 0) this.#queue.push(payload);
    else {
      const sent = this.#sendWithinWindow(payload);
      if (sent < payload.length) this.#queue.push(payload.subarray(sent));
    }
    if (this.blocked) {
      this.#client.waitDrain(this);
      return false;
    }
    return true;
  }

  /** Half-close: no more data from this end. */
  end(): void {
    if (this.#open) this.#client.send({ type: PacketType.SocketEnd, connectionId: this.id });
  }

  /** Closes the pair (SocketClosed Normal). */
  close(reason: number = CloseReason.Normal): void {
    if (!this.#open) return;
    this.#open = false;
    this.#client.forget(this);
    this.#client.send({ type: PacketType.SocketClosed, connectionId: this.id, reason });
  }

  /** Grants the peer the bytes consumed but not yet granted (used when autoGrant is off and then resumed). */
  grantConsumed(): void {
    if (this.#consumed > 0 && this.#open) {
      this.#client.send({ type: PacketType.WindowUpdate, connectionId: this.id, bytes: this.#consumed });
      this.#consumed = 0;
    }
  }

  /** @internal payload from the relay */
  receive(payload: Buffer): void {
    this.received += payload.length;
    this.onData(payload);
    if (!this.autoGrant) {
      this.#consumed += payload.length;
      return;
    }
    this.#consumed += payload.length;
    if (this.#consumed >= Math.max(WINDOW_UPDATE_THRESHOLD_BYTES, this.#receiveWindow / 4)) this.grantConsumed();
  }

  /**
   * @internal The peer waits on our credit. As the library does: once a window's worth has come
   * since the window last grew, grow it and grant the difference (with what was consumed) at once.
   */
  peerBlocked(): void {
    if (!this.autoGrant || !this.#open || this.#receiveWindow >= MAX_WINDOW_BYTES) return;
    if (this.received - this.#grewAt < this.#receiveWindow) return;
    const grown = Math.min(MAX_WINDOW_BYTES, this.#receiveWindow * WINDOW_GROWTH_FACTOR);
    const extra = grown - this.#receiveWindow;
    this.#receiveWindow = grown;
    this.#grewAt = this.received;
    this.#client.send({ type: PacketType.WindowUpdate, connectionId: this.id, bytes: extra + this.#consumed });
    this.#consumed = 0;
  }

  /** @internal WindowUpdate from the peer */
  grant(bytes: number): void {
    this.#window += bytes;
    this.#blockedSignalled = false;
    while (this.#queue.length > 0 && this.#window > 0) {
      const head = this.#queue[0];
      const sent = this.#sendWithinWindow(head);
      if (sent < head.length) {
        this.#queue[0] = head.subarray(sent);
        break;
      }
      this.#queue.shift();
    }
    if (!this.blocked) this.onDrain();
  }

  /** @internal */
  closedBy(reason: number): void {
    if (this.closeReason !== undefined) return;
    this.#open = false;
    this.closeReason = reason;
    this.onClose(reason);
  }

  #sendWithinWindow(payload: Uint8Array): number {
    const socket = this.#client.socket;
    const maxPayload = this.#client.maxPayloadBytes;
    let offset = 0;
    while (offset < payload.length && this.#window > 0) {
      const n = Math.min(this.#window, payload.length - offset, maxPayload);
      const piece = offset === 0 && n === payload.length ? payload : payload.subarray(offset, offset + n);
      if (n < COPY_PAYLOAD_BELOW_BYTES) socket.write(encodeArbitraryData(this.id, piece));
      else {
        socket.cork();
        socket.write(encodeArbitraryDataHeader(this.id, n));
        socket.write(piece);
        socket.uncork();
      }
      this.#window -= n;
      offset += n;
    }
    if (offset < payload.length && !this.#blockedSignalled) {
      this.#blockedSignalled = true;
      this.#client.send({ type: PacketType.WindowUpdate, connectionId: this.id, bytes: 0 });
    }
    return offset;
  }
}
