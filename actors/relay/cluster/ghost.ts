/**
 * A stand-in on this relay for a client of another relay of the cluster (docs/CLUSTER.md
 * "Across relays"): an ordinary client connection over an in-memory stream, admitted with the
 * remote client's real IP, so the shared address map gives it the remote client's virtual IP and
 * the relay's own handshake, pair, window and backpressure code serves it unchanged. The cluster's
 * router speaks the protocol on the other end of the stream and carries it over NATS.
 *
 * Identity (docs/CLUSTER.md "Identity across relays"): a stand-in is admitted with the key the
 * remote client proved to its own relay, vouched for by that relay, and says Hello version 2
 * without being challenged (it holds no private key). So this relay announces the remote client's
 * true key to its peers (PeerKey), and in key mode the address map gives it the key's address.
 */
import { Duplex } from 'node:stream';
import {
  BindStatus,
  ConnectionStatus,
  FrameReader,
  IDENTITY_PROTOCOL_VERSION,
  PacketType,
  PROTOCOL_VERSION,
  decodeFrame,
  encodePacket,
  type Packet,
} from '../../../protocol/index.ts';
import { ProtocolError } from '../../../protocol/errors.ts';
import type { Relay } from '../relay-types.ts';

/** Frame header (u32 length, u8 type) and ArbitraryData's u32 connection id. */
export const DATA_HEADER_BYTES = 9;
/** Where ArbitraryData's connection id sits in its frame. */
export const DATA_CONNECTION_ID_OFFSET = 5;
/** How long a stand-in waits for the relay's VirtualIP or BindResponse. */
const GHOST_REPLY_TIMEOUT_MS = 10_000;

/** One end of an in-memory stream pair: what one end writes, the other reads, with backpressure. */
class PipeEnd extends Duplex {
  peer!: PipeEnd;
  /** The peer's write waiting for this end's reader to want more. */
  waiting: (() => void) | undefined;

  override _read(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.peer.destroyed) return callback();
    if (this.peer.push(chunk)) callback();
    else this.peer.waiting = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
    if (!this.peer.destroyed) this.peer.destroy();
    callback(error);
  }
}

function streamPair(): [PipeEnd, PipeEnd] {
  const a = new PipeEnd({ allowHalfOpen: false });
  const b = new PipeEnd({ allowHalfOpen: false });
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** A packet the relay sent to the stand-in (Pings are answered here and not passed on). */
export type GhostListener = (packet: Packet) => void;
/**
 * An ArbitraryData frame the relay sent to the stand-in, for pair `connectionId`: concatenated,
 * `pieces` are the whole frame (header included). They are views of buffers the relay wrote and
 * never reuses (fresh socket reads, freshly encoded packets), so they may be held.
 */
export type GhostDataListener = (connectionId: number, pieces: readonly Uint8Array[]) => void;

export class Ghost {
  readonly realIp: string;
  /** The remote client's proven key it speaks with, or undefined for a client that proved none. */
  readonly publicKey: Uint8Array | undefined;
  /** The relay-local id of its connection. */
  readonly clientId: number;
  readonly #stream: PipeEnd;
  readonly #decoder: FrameReader;
  readonly #ports = new Map<number, number>();
  readonly #binding = new Map<number, Promise<boolean>>();
  #nextRequestId = 1;
  #waiters = new Map<string, (packet: Packet) => void>();
  #listener: GhostListener = () => {};
  #dataListener: GhostDataListener = () => {};
  readonly closed: Promise<void>;
  #virtualIp: Promise<number>;
  /** PeerKeys the relay sent with a handshake, by its connection id, until the answer is read. */
  readonly #peerKeys = new Map<number, Uint8Array>();
  /**
   * What the relay sent for a connection accepted through a waiter before the router joined it to
   * its link (takeEarly): the accepting end may write at once (an e2e preamble, a banner), and the
   * router's await of the answer resumes only after this stream's reader has gone on to those
   * frames. Held in order, bounded by the protocol window the relay keeps towards this stand-in.
   */
  readonly #early = new Map<number, Array<() => void>>();

  private constructor(realIp: string, publicKey: Uint8Array | undefined, clientId: number, stream: PipeEnd) {
    this.realIp = realIp;
    this.publicKey = publicKey;
    this.clientId = clientId;
    this.#stream = stream;
    this.closed = new Promise((resolve) => stream.once('close', () => resolve()));
    // Data frames are passed on undecoded, as the pieces they arrived in (never copied together):
    // the data path of a cross-relay pair (routing.ts), whose link copies them once into its message.
    this.#decoder = new FrameReader(
      {
        frame: (type, frame) => {
          if (type === PacketType.ArbitraryData && frame.length >= DATA_HEADER_BYTES) {
            this.#data(Buffer.from(frame.buffer, frame.byteOffset, frame.length).readUInt32BE(DATA_CONNECTION_ID_OFFSET), [frame]);
          } else this.#onFrame(frame);
        },
        dataPieces: (connectionId, _frameBytes, pieces) => {
          this.#data(connectionId, pieces);
        },
      },
      { maxFrameBytes: 64 * 1024 * 1024 },
    );
    stream.on('data', (chunk: Buffer) => {
      if (this.#decoder.push(chunk) !== undefined) stream.destroy();
    });
    stream.on('error', () => {});
    this.#virtualIp = this.#expect('virtualIp').then((p) => (p.type === PacketType.VirtualIp ? p.ip : Promise.reject(new Error(`the relay refused the stand-in for ${realIp}`))));
    this.#virtualIp.catch(() => {});
    // Version 2 with a vouched key: the relay sends no Challenge (handlers/hello.ts) and announces the key.
    this.send({ type: PacketType.Hello, version: publicKey === undefined ? PROTOCOL_VERSION : IDENTITY_PROTOCOL_VERSION });
  }

  /**
   * Admits a stand-in for `realIp` on `relay` and waits for its VirtualIP. `publicKey`: the key
   * the client proved to its own relay (carried across the cluster), if it proved one.
   */
  static async open(relay: Relay, realIp: string, onAdmitted?: (clientId: number) => void, publicKey?: Uint8Array): Promise<Ghost> {
    const [ours, relays] = streamPair();
    const clientId = relay.admitStream(relays, realIp, publicKey);
    if (clientId === undefined) {
      ours.destroy();
      throw new Error(`the relay refused a stand-in for ${realIp}`);
    }
    // Before its VirtualIP: presence must know it is a stand-in before the relay reports it connected.
    onAdmitted?.(clientId);
    const ghost = new Ghost(realIp, publicKey, clientId, ours);
    try {
      await ghost.#virtualIp;
    } catch (error) {
      // No VirtualIP in time: the admitted connection must not live on untracked (a late VirtualIP
      // would make a client nobody routes for, announced by presence as held here).
      ours.destroy();
      throw error;
    }
    return ghost;
  }

  get alive(): boolean {
    return !this.#stream.destroyed;
  }

  /** Where packets other than the answers it waits for go. */
  listen(listener: GhostListener): void {
    this.#listener = listener;
  }

  /** Where ArbitraryData frames go, undecoded (see GhostDataListener). */
  listenData(listener: GhostDataListener): void {
    this.#dataListener = listener;
  }

  /**
   * The frames the relay sent for `connectionId` between its accepted answer and now, to replay in
   * order once the router has joined it (routing.ts #join); from now on they flow as usual.
   */
  takeEarly(connectionId: number): Array<() => void> {
    const early = this.#early.get(connectionId) ?? [];
    this.#early.delete(connectionId);
    return early;
  }

  #data(connectionId: number, pieces: Uint8Array[]): void {
    const early = this.#early.get(connectionId);
    if (early === undefined) return this.#dataListener(connectionId, pieces);
    // Copied: the pieces may be views of the reader's buffer, reused once this returns.
    const copies = pieces.map((piece) => Buffer.from(piece));
    early.push(() => this.#dataListener(connectionId, copies));
  }

  /** Writes an encoded frame as it is. */
  sendFrame(frame: Uint8Array): boolean {
    if (this.#stream.destroyed) return false;
    return this.#stream.write(frame);
  }

  send(packet: Packet): boolean {
    if (this.#stream.destroyed) return false;
    return this.#stream.write(encodePacket(packet));
  }

  /** A request id of the stand-in's own. */
  newRequestId(): number {
    const id = this.#nextRequestId;
    this.#nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  /**
   * Holds `port` (refcounted): true when held. A port already held by another connection of the
   * host on this relay is not ours to use, and is false.
   */
  async hold(port: number): Promise<boolean> {
    const count = this.#ports.get(port);
    if (count !== undefined) {
      this.#ports.set(port, count + 1);
      return true;
    }
    let binding = this.#binding.get(port);
    if (binding === undefined) {
      const requestId = this.newRequestId();
      binding = this.#expect(`bind:${requestId}`).then((p) => p.type === PacketType.BindResponse && p.status === BindStatus.Ok);
      this.#binding.set(port, binding);
      this.send({ type: PacketType.BindRequest, requestId, port });
    }
    const ok = await binding.catch(() => false);
    this.#binding.delete(port);
    if (ok) this.#ports.set(port, (this.#ports.get(port) ?? 0) + 1);
    return ok;
  }

  /** Gives up one use of `port`; the last one unbinds it. */
  release(port: number): void {
    const count = this.#ports.get(port);
    if (count === undefined) return;
    if (count > 1) this.#ports.set(port, count - 1);
    else {
      this.#ports.delete(port);
      this.send({ type: PacketType.Unbind, port });
    }
  }

  /** Resolves with the answer to request `requestId` (a response or RequestFailed). */
  answer(requestId: number): Promise<Packet> {
    return this.#expect(`req:${requestId}`);
  }

  /**
   * The key the relay announced for the other end of connection `connectionId` (§2a PeerKey, sent
   * just before the accepted SocketConnectionResponse), taken once; undefined when it announced none.
   */
  takePeerKey(connectionId: number): Uint8Array | undefined {
    const key = this.#peerKeys.get(connectionId);
    this.#peerKeys.delete(connectionId);
    return key;
  }

  /** Runs `callback` once the relay has taken what the stand-in wrote. */
  onceDrained(callback: () => void): void {
    this.#stream.once('drain', callback);
  }

  close(): void {
    this.#stream.destroy();
  }

  #expect(key: string): Promise<Packet> {
    return new Promise<Packet>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        reject(new Error(`the relay did not answer the stand-in for ${this.realIp} (${key}) within ${GHOST_REPLY_TIMEOUT_MS} ms`));
      }, GHOST_REPLY_TIMEOUT_MS);
      timer.unref();
      void this.closed.then(() => {
        clearTimeout(timer);
        if (this.#waiters.delete(key)) reject(new Error(`the stand-in for ${this.realIp} was closed`));
      });
      this.#waiters.set(key, (packet) => {
        clearTimeout(timer);
        resolve(packet);
      });
    });
  }

  #resolve(key: string, packet: Packet): boolean {
    const waiter = this.#waiters.get(key);
    if (waiter === undefined) return false;
    this.#waiters.delete(key);
    waiter(packet);
    return true;
  }

  #onFrame(frame: Uint8Array): void {
    const packet = decodeFrame(frame);
    if (packet instanceof ProtocolError) return void this.#stream.destroy();
    switch (packet.type) {
      case PacketType.Ping:
        this.send({ type: PacketType.Pong, nonce: packet.nonce });
        return;
      case PacketType.VirtualIp:
        this.#resolve('virtualIp', packet);
        return;
      case PacketType.Error:
        if (!this.#resolve('virtualIp', packet)) this.#listener(packet);
        return;
      case PacketType.BindResponse:
        this.#resolve(`bind:${packet.requestId}`, packet);
        return;
      case PacketType.SocketStatusResponse:
      case PacketType.RequestFailed:
        if (!this.#resolve(`req:${packet.requestId}`, packet)) this.#listener(packet);
        return;
      case PacketType.SocketConnectionResponse:
        // An accept the router waits for: hold what follows for it until it is joined (takeEarly).
        if (packet.status === ConnectionStatus.Accepted && this.#waiters.has(`req:${packet.requestId}`)) this.#early.set(packet.connectionId, []);
        if (!this.#resolve(`req:${packet.requestId}`, packet)) this.#listener(packet);
        // A refused or unanswered handshake leaves no key behind.
        if (packet.status !== ConnectionStatus.Accepted) this.#peerKeys.delete(packet.connectionId);
        return;
      case PacketType.PeerKey:
        // Kept for the router, which tells the asking relay whose key it was (routing.ts).
        this.#peerKeys.set(packet.connectionId, packet.publicKey);
        return;
      case PacketType.SocketConnectionRequest:
        // The requester's key came with it; the router reads the requester's identity from its own relay.
        this.#peerKeys.delete(packet.connectionId);
        this.#listener(packet);
        return;
      default: {
        const early = 'connectionId' in packet ? this.#early.get(packet.connectionId) : undefined;
        if (early !== undefined) early.push(() => this.#listener(packet));
        else this.#listener(packet);
      }
    }
  }
}
