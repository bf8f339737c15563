/**
 * A raw-protocol test client: one TCP connection from a chosen loopback source address, the
 * frame decoder, and a queue of received packets that specs await by type. No client library
 * logic, so specs can send anything, including bytes no client would.
 */
import net from 'node:net';
import { once } from 'node:events';
import {
  FrameDecoder,
  HELLO_MAGIC,
  IDENTITY_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  PacketType,
  ProtocolError,
  decodeFrame,
  encodePacket,
  type Packet,
  type PacketOf,
  type PacketType as PacketTypeValue,
  type VirtualIpPacket,
} from '../../protocol/index.ts';

/** How long `next()` waits before failing the spec, so a missing packet fails rather than hangs. */
export const DEFAULT_NEXT_TIMEOUT_MS = 5_000;

export interface RawClientOptions {
  /** Relay port. */
  port: number;
  /** Relay host. @default '127.0.0.1' */
  host?: string;
  /** Source address, one per simulated machine: '127.0.0.2', '127.0.0.3', … @default '127.0.0.2' */
  localAddress?: string;
  /** Answer relay Pings at once instead of queueing them. @default true */
  autoPong?: boolean;
  /** Largest frame to accept. @default 16 MiB */
  maxFrameBytes?: number;
}

interface Waiter {
  type: number | undefined;
  resolve: (packet: Packet) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class RawClient {
  readonly socket: net.Socket;
  /** Packets received and not yet taken by `next()`. */
  readonly queue: Packet[] = [];
  /** Resolves when the TCP connection has closed. */
  readonly closed: Promise<void>;
  /** Bytes received in ArbitraryData payloads, per connection id (filled when `collect` is on). */
  readonly received = new Map<number, Uint8Array[]>();
  /** Count ArbitraryData into `received` instead of queueing it. */
  collect = false;
  onData: ((connectionId: number, data: Uint8Array) => void) | undefined;
  decodeError: ProtocolError | undefined;
  #waiters: Waiter[] = [];
  #decoder: FrameDecoder;
  #autoPong: boolean;
  #ended = false;

  private constructor(socket: net.Socket, options: RawClientOptions) {
    this.socket = socket;
    this.#autoPong = options.autoPong ?? true;
    this.#decoder = new FrameDecoder((_type, frame) => this.#onFrame(frame), {
      maxFrameBytes: options.maxFrameBytes ?? 16 * 1024 * 1024,
    });
    socket.on('data', (chunk: Buffer) => {
      const error = this.#decoder.push(chunk);
      if (error) this.decodeError = error;
    });
    socket.on('error', () => {});
    this.closed = once(socket, 'close').then(() => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(new Error(`connection closed while waiting for ${w.type === undefined ? 'a packet' : packetName(w.type)}`));
      }
    });
  }

  /** Opens a TCP connection (no Hello yet). */
  static async connect(options: RawClientOptions): Promise<RawClient> {
    const socket = net.connect({ host: options.host ?? '127.0.0.1', port: options.port, localAddress: options.localAddress ?? '127.0.0.2' });
    socket.setNoDelay(true);
    await once(socket, 'connect');
    return new RawClient(socket, options);
  }

  /** Connects, says Hello and returns the VirtualIP answer. */
  static async open(options: RawClientOptions): Promise<{ client: RawClient; virtualIp: VirtualIpPacket }> {
    const client = await RawClient.connect(options);
    const virtualIp = await client.hello();
    return { client, virtualIp };
  }

  async hello(version = PROTOCOL_VERSION): Promise<VirtualIpPacket> {
    this.send({ type: PacketType.Hello, version });
    return this.next(PacketType.VirtualIp);
  }

  /**
   * Says Hello version 2 and answers the relay's Challenge with `prove(challenge)` (§2a);
   * returns the VirtualIP answer.
   */
  async helloWithProof(prove: (challenge: Uint8Array) => { publicKey: Uint8Array; signature: Uint8Array }): Promise<VirtualIpPacket> {
    this.send({ type: PacketType.Hello, version: IDENTITY_PROTOCOL_VERSION });
    const challenge = await this.next(PacketType.Challenge);
    this.send({ type: PacketType.IdentityProof, ...prove(challenge.nonce) });
    return this.next(PacketType.VirtualIp);
  }

  /** Sends a packet or raw bytes. Returns write()'s answer (false: the kernel buffer is full). */
  send(packet: Packet | Uint8Array): boolean {
    return this.socket.write(packet instanceof Uint8Array ? packet : encodePacket(packet));
  }

  /** Binds a port (0 = ephemeral) and returns the BindResponse. */
  async bind(port: number, requestId = nextId()): Promise<PacketOf<typeof PacketType.BindResponse>> {
    this.send({ type: PacketType.BindRequest, requestId, port });
    return this.next(PacketType.BindResponse);
  }

  /** The next received packet of `type` (any type when omitted), waiting for it if needed. */
  next<T extends PacketTypeValue>(type: T, timeoutMs?: number): Promise<PacketOf<T>>;
  next(type?: undefined, timeoutMs?: number): Promise<Packet>;
  next(type?: number, timeoutMs = DEFAULT_NEXT_TIMEOUT_MS): Promise<Packet> {
    const index = this.queue.findIndex((p) => type === undefined || p.type === type);
    if (index >= 0) return Promise.resolve(this.queue.splice(index, 1)[0]);
    if (this.#ended) return Promise.reject(new Error(`connection closed; no ${type === undefined ? 'packet' : packetName(type)}`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        type,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new Error(`no ${type === undefined ? 'packet' : packetName(type)} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Stops reading (a stalled receiver). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }

  #onFrame(frame: Uint8Array): void {
    const packet = decodeFrame(frame);
    if (packet instanceof ProtocolError) {
      this.decodeError = packet;
      return;
    }
    if (this.#autoPong && packet.type === PacketType.Ping) {
      this.send({ type: PacketType.Pong, nonce: packet.nonce });
      return;
    }
    if (packet.type === PacketType.ArbitraryData && (this.collect || this.onData)) {
      if (this.onData) this.onData(packet.connectionId, packet.data);
      if (this.collect) {
        let list = this.received.get(packet.connectionId);
        if (list === undefined) this.received.set(packet.connectionId, (list = []));
        list.push(packet.data);
      }
      return;
    }
    const index = this.#waiters.findIndex((w) => w.type === undefined || w.type === packet.type);
    if (index >= 0) {
      const [waiter] = this.#waiters.splice(index, 1);
      clearTimeout(waiter.timer);
      waiter.resolve(packet);
      return;
    }
    this.queue.push(packet);
  }
}

let requestCounter = 1000;
/** A fresh request id for specs. */
export function nextId(): number {
  return requestCounter++;
}

export function packetName(type: number): string {
  for (const [name, value] of Object.entries(PacketType)) if (value === type) return name;
  return `type 0x${type.toString(16)}`;
}

/** Raw Hello bytes with an arbitrary magic, for malformed-hello specs. */
export function helloBytes(magic = HELLO_MAGIC, version = PROTOCOL_VERSION): Uint8Array {
  const bytes = new Uint8Array(11);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 7);
  bytes[4] = PacketType.Hello;
  view.setUint32(5, magic);
  view.setUint16(9, version);
  return bytes;
}

/** A bare socket that has said Hello and read its 23-byte VirtualIP, for attacks RawClient would get in the way of. */
export async function helloSocket(port: number, localAddress: string): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(helloBytes());
  let got = 0;
  while (got < 23) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    got += chunk.length;
  }
  if (got !== 23) throw new Error(`expected only VirtualIP, got ${got} bytes`);
  return socket;
}

/**
 * The Error packet a bare socket receives before the relay closes it (Pings are skipped).
 * Rejects with a message if the socket closes without one or nothing comes within `timeoutMs`.
 */
export function nextError(socket: net.Socket, timeoutMs = DEFAULT_NEXT_TIMEOUT_MS): Promise<PacketOf<typeof PacketType.Error>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no Error packet within ${timeoutMs} ms`)), timeoutMs);
    const decoder = new FrameDecoder((_type, frame) => {
      const packet = decodeFrame(frame);
      if (!(packet instanceof ProtocolError) && packet.type === PacketType.Error) finish(undefined, packet);
    });
    const onData = (chunk: Buffer) => decoder.push(chunk);
    const onClose = () => finish(new Error('the connection closed without an Error packet'));
    function finish(error: Error | undefined, packet?: PacketOf<typeof PacketType.Error>) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      if (error) reject(error);
      else resolve(packet!);
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.resume();
  });
}

/** The 5-byte header of a frame of `type` declaring `length` (type + body), with nothing after it. */
export function frameHeader(type: number, length: number): Uint8Array {
  const bytes = new Uint8Array(5);
  new DataView(bytes.buffer).setUint32(0, length);
  bytes[4] = type;
  return bytes;
}
