/**
 * One TCP connection from a client to the relay: the only owner of that socket. It does the
 * Hello handshake (docs/PROTOCOL.md §2), answers Ping at once and treats a relay silent past
 * its keepalive timeout as lost (§4), matches answers to requests by id with a timeout each
 * (§3), and hands every other frame to the client. All output goes through `write()`.
 */
import net from 'node:net';
import { once } from 'node:events';
import {
  ARBITRARY_DATA_HEADER_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  ERROR_CODE_NAMES,
  IDENTITY_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  PacketType,
  decodeFrame,
  encodePacket,
  formatIpv4,
  readConnectionId,
} from '../../protocol/index.ts';
import type { Packet } from '../../protocol/index.ts';
import type { Logger } from '../logger.ts';
// The framing core's data-pieces mode hands a data frame spanning TCP reads over as the slices it
// came in: the client keeps them as they are instead of copying each 64 KiB frame into a buffer.
import { FrameReader } from '../../protocol/frame-reader.ts';
import { ClientError, RelayLostError, RelayRejectedError, RelayUnreachableError, TimeoutError } from './errors.ts';
import { startTimer } from './timer.ts';
import { signChallenge, type Identity } from './identity.ts';
import type { ClientTimer, Clock } from './timer.ts';

/** Answers the relay sends to a client's own requests. */
export type AnswerPacket = Extract<
  Packet,
  { type: 0x11 | 0x21 | 0x22 | 0x24 }
>;

/**
 * Bytes the relay connection may queue in the process before writers are asked to wait for
 * 'drain'. Node's default (16 KiB) is a quarter of one data frame, so every 64 KiB write would
 * wait for a drain; this holds a few frames, and the kernel's send buffer is far larger anyway.
 */
export const SESSION_WRITE_HIGH_WATER_MARK_BYTES = 1024 * 1024;

/** Receives the frames the session does not handle itself. */
export interface SessionHandler {
  /** Any frame but Ping/Pong/answers/data. `frame` is the whole frame; it may be a view of a read buffer. */
  onFrame(type: number, frame: Uint8Array): void;
  /** The payload of one ArbitraryData frame, as one or more views of the read buffers it arrived in. */
  onData(connectionId: number, payload: readonly Uint8Array[]): void;
  /** The connection ended; called once. */
  onLost(error: ClientError): void;
}

export interface DialOptions {
  host: string;
  port: number;
  localAddress: string | undefined;
  /** Time allowed for TCP connect plus Hello → VirtualIP, in ms. */
  timeoutMs: number;
  signal: AbortSignal | undefined;
  logger: Logger;
  /** The clock of the connect, keepalive and request timeouts; undefined for real time. */
  clock: Clock | undefined;
  /** Proves this key at Hello (§2a, Hello version 2); undefined says Hello version 1. */
  identity?: Identity | undefined;
}

interface PendingRequest {
  onAnswer: ((packet: AnswerPacket) => void) | undefined;
  resolve: (packet: AnswerPacket) => void;
  reject: (error: Error) => void;
  timer: ClientTimer;
}

/** A live, handshaken connection to the relay. */
export class RelaySession {
  readonly virtualIp: number;
  readonly maxFrameBytes: number;
  readonly keepaliveTimeoutMs: number;
  #socket: net.Socket;
  #decoder: FrameReader;
  #drain: Promise<void> | undefined;
  #handler: SessionHandler | undefined;
  #pending = new Map<number, PendingRequest>();
  #nextRequestId = 1;
  #keepalive: ClientTimer;
  #lost: ClientError | undefined;
  #logger: Logger;
  #clock: Clock | undefined;

  /** Use {@link dialSession}. */
  constructor(socket: net.Socket, decoder: FrameReader, hello: Extract<Packet, { type: 0x02 }>, logger: Logger, clock: Clock | undefined) {
    this.#socket = socket;
    this.#decoder = decoder;
    this.#logger = logger;
    this.#clock = clock;
    this.virtualIp = hello.ip;
    this.maxFrameBytes = hello.maxFrameBytes;
    this.keepaliveTimeoutMs = hello.keepaliveTimeoutMs;
    const silent = (): void => {
      this.#fail(new RelayLostError(`the relay was silent for ${this.keepaliveTimeoutMs} ms (keepalive timeout)`));
    };
    this.#keepalive = startTimer(clock, this.keepaliveTimeoutMs, silent, { unref: true });
  }

  /** Starts delivering frames to `handler` (frames that arrived with VirtualIP are replayed). */
  attach(handler: SessionHandler, buffered: Array<[number, Uint8Array]>): void {
    this.#handler = handler;
    for (const [type, frame] of buffered) this.receive(type, frame);
    this.#socket.on('data', (chunk: Buffer) => {
      const error = this.#decoder.push(chunk);
      if (error) this.#fail(new RelayLostError(`the relay sent bad bytes: ${error.message}`, { cause: error }));
    });
    this.#socket.on('close', () => this.#fail(new RelayLostError('the connection to the relay closed')));
    this.#socket.on('error', (error) => this.#fail(new RelayLostError(`the connection to the relay failed: ${error.message}`, { cause: error })));
    if (this.#socket.destroyed) this.#fail(new RelayLostError('the connection to the relay closed'));
    else this.#socket.resume();
  }

  /** Called by the reader for an ArbitraryData frame that came in pieces (internal). */
  receivePieces(connectionId: number, pieces: Uint8Array[]): void {
    if (this.#lost) return;
    this.#keepalive.refresh();
    // The first piece starts with the 9-byte head (a split head arrives as exactly those 9 bytes).
    const first = pieces[0].subarray(ARBITRARY_DATA_HEADER_BYTES);
    if (first.length > 0) pieces[0] = first;
    else pieces.shift();
    this.#handler?.onData(connectionId, pieces);
  }

  /** Called by the reader for each whole frame after the handshake (internal). */
  receive(type: number, frame: Uint8Array): void {
    if (this.#lost) return;
    // Any frame is a sign of life (§4); refresh() re-arms the timer without allocating.
    this.#keepalive.refresh();
    switch (type) {
      case PacketType.ArbitraryData:
        if (frame.length < ARBITRARY_DATA_HEADER_BYTES) break; // decodeFrame reports it below
        this.#handler?.onData(readConnectionId(frame), [frame.subarray(ARBITRARY_DATA_HEADER_BYTES)]);
        return;
      case PacketType.WindowUpdate:
      case PacketType.SocketEnd:
      case PacketType.SocketClosed:
      case PacketType.SocketStatusRequest:
      case PacketType.SocketConnectionRequest:
      case PacketType.PeerKey:
        this.#handler?.onFrame(type, frame);
        return;
    }
    const packet = decodeFrame(frame);
    if (packet instanceof Error) {
      this.#fail(new RelayLostError(`the relay sent a bad packet: ${packet.message}`, { cause: packet }));
      return;
    }
    switch (packet.type) {
      case PacketType.Ping:
        this.write(encodePacket({ type: PacketType.Pong, nonce: packet.nonce }));
        return;
      case PacketType.Pong:
        return;
      case PacketType.Error: {
        const name = ERROR_CODE_NAMES[packet.code] ?? `code ${packet.code}`;
        this.#fail(new RelayLostError(`the relay ended the connection: ${name}${packet.message ? ` (${packet.message})` : ''}`));
        return;
      }
      case PacketType.BindResponse:
      case PacketType.SocketStatusResponse:
      case PacketType.RequestFailed:
      case PacketType.SocketConnectionResponse: {
        const request = this.#pending.get(packet.requestId);
        if (request === undefined) return; // answered after our timeout: nobody waits any more
        this.#pending.delete(packet.requestId);
        request.timer.close();
        // Synchronous, so state the answer creates exists before the next frame is handled.
        request.onAnswer?.(packet);
        request.resolve(packet);
        return;
      }
      default:
        this.#logger.debug({ type: packet.type }, 'ignoring unexpected packet from relay');
    }
  }

  /** The error the session ended with, if it has. */
  get lost(): ClientError | undefined {
    return this.#lost;
  }

  /** Writes one frame; returns false when the socket asks the writer to wait for drain. */
  write(frame: Uint8Array): boolean {
    if (this.#lost) return false;
    return this.#socket.write(frame);
  }

  /**
   * Writes an ArbitraryData frame as its 9-byte head and `payload` itself (one writev, no copy).
   * `payload` is referenced until the socket has handed it to the kernel: {@link unflushedBytes}
   * is 0 then, and `flushed` (if given) is called. Returns false when the writer should wait for
   * drain, as write() does.
   */
  writeData(head: Uint8Array, payload: Uint8Array, flushed?: () => void): boolean {
    if (this.#lost) {
      flushed?.();
      return false;
    }
    this.#socket.cork();
    this.#socket.write(head);
    const ok = this.#socket.write(payload, flushed);
    this.#socket.uncork();
    return ok;
  }

  /** Bytes written to the relay connection that the kernel has not taken yet. */
  get unflushedBytes(): number {
    return this.#lost ? 0 : this.#socket.writableLength;
  }

  /** True when the TCP send buffer is above its high-water mark. */
  get needsDrain(): boolean {
    return this.#socket.writableNeedDrain;
  }

  /**
   * Resolves when the TCP send buffer has drained (or the session ended). Every writer waiting
   * shares one promise and one pair of listeners, however many connections wait (with more
   * than ten, a listener each made Node warn of a leak: issue 15).
   */
  drained(): Promise<void> {
    if (!this.#socket.writableNeedDrain || this.#lost) return Promise.resolve();
    this.#drain ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        this.#drain = undefined;
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    return this.#drain;
  }

  /**
   * Sends a request built around a fresh request id and resolves with the relay's answer.
   * Rejects with TimeoutError after `timeoutMs` and with the session's error if it ends first.
   */
  request(
    build: (requestId: number) => Packet,
    timeoutMs: number,
    what: string,
    onAnswer?: (packet: AnswerPacket) => void,
  ): Promise<AnswerPacket> {
    if (this.#lost) return Promise.reject(this.#lost);
    // Ids are unique among this client's requests in flight (§3); wrap and skip live ones.
    let requestId = this.#nextRequestId;
    while (this.#pending.has(requestId)) requestId = (requestId % 0xffff_ffff) + 1;
    this.#nextRequestId = (requestId % 0xffff_ffff) + 1;
    return new Promise<AnswerPacket>((resolve, reject) => {
      const timer = startTimer(this.#clock, timeoutMs, () => {
        this.#pending.delete(requestId);
        reject(new TimeoutError(`${what}: no answer from the relay within ${timeoutMs} ms`));
      });
      this.#pending.set(requestId, { onAnswer, resolve, reject, timer });
      this.write(encodePacket(build(requestId)));
    });
  }

  /** Closes the TCP connection; pending requests fail with `error`. */
  close(error: ClientError = new RelayLostError('the client closed its connection to the relay')): void {
    this.#fail(error);
  }

  #fail(error: ClientError): void {
    if (this.#lost) return;
    this.#lost = error;
    this.#keepalive.close();
    this.#decoder.stop();
    for (const request of this.#pending.values()) {
      request.timer.close();
      request.reject(error);
    }
    this.#pending.clear();
    this.#socket.destroy();
    this.#handler?.onLost(error);
  }
}

/** Opens TCP to the relay, says Hello and waits for VirtualIP. Rejects with a ClientError. */
export async function dialSession(options: DialOptions): Promise<{ session: RelaySession; buffered: Array<[number, Uint8Array]> }> {
  const { host, port, localAddress, timeoutMs, signal, logger, clock, identity } = options;
  signal?.throwIfAborted();
  const where = `${host}:${port}`;
  const socket = net.connect({
    host,
    port,
    noDelay: true,
    writableHighWaterMark: SESSION_WRITE_HIGH_WATER_MARK_BYTES,
    ...(localAddress ? { localAddress } : {}),
  } as net.NetConnectOpts);
  // Frames after VirtualIP in the same chunk must not be lost before attach().
  const buffered: Array<[number, Uint8Array]> = [];
  let hello: Extract<Packet, { type: 0x02 }> | undefined;
  let failure: ClientError | undefined;
  let session: RelaySession | undefined;
  const onFrame = (type: number, frame: Uint8Array): void => {
    if (session !== undefined) {
      session.receive(type, frame);
      return;
    }
    if (hello !== undefined) {
      // Kept past this chunk: copied, as the read buffer may be reused.
      buffered.push([type, frame.slice()]);
      return;
    }
    const packet = decodeFrame(frame);
    if (packet instanceof Error) failure = new RelayUnreachableError(`${where} is not an AlphaNET relay: ${packet.message}`);
    else if (packet.type === PacketType.VirtualIp) hello = packet;
    else if (packet.type === PacketType.Challenge && identity !== undefined) {
      // §2a: sign the relay's fresh challenge; VirtualIP follows once it verifies.
      socket.write(encodePacket({ type: PacketType.IdentityProof, publicKey: identity.publicKey, signature: signChallenge(identity, packet.nonce) }));
    }
    else if (packet.type === PacketType.Error) {
      const name = ERROR_CODE_NAMES[packet.code] ?? `code ${packet.code}`;
      failure = new RelayRejectedError(packet.code, `the relay at ${where} refused the client: ${name}${packet.message ? ` (${packet.message})` : ''}`);
    } else failure = new RelayUnreachableError(`${where} answered Hello with an unexpected packet`);
  };
  const decoder = new FrameReader(
    {
      frame: onFrame,
      dataPieces: (connectionId, frameBytes, pieces) => {
        if (session !== undefined) session.receivePieces(connectionId, pieces);
        else onFrame(PacketType.ArbitraryData, Buffer.concat(pieces, frameBytes));
      },
    },
    { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES },
  );
  const ac = new AbortController();
  const timer = startTimer(clock, timeoutMs, () => ac.abort());
  const onAbort = (): void => ac.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const onData = (chunk: Buffer): void => {
    const error = decoder.push(chunk);
    if (error) failure ??= new RelayUnreachableError(`${where} is not an AlphaNET relay: ${error.message}`);
    if (hello !== undefined || failure !== undefined) socket.emit('alphanet.hello');
  };
  socket.on('data', onData);
  try {
    await once(socket, 'connect', { signal: ac.signal });
    socket.write(encodePacket({ type: PacketType.Hello, version: identity === undefined ? PROTOCOL_VERSION : IDENTITY_PROTOCOL_VERSION }));
    await Promise.race([
      once(socket, 'alphanet.hello', { signal: ac.signal }),
      once(socket, 'close', { signal: ac.signal }).then(() => {
        failure ??= new RelayUnreachableError(`the relay at ${where} closed the connection during the handshake`);
      }),
    ]);
  } catch (error) {
    socket.destroy();
    if (signal?.aborted) throw signal.reason;
    if (ac.signal.aborted) throw new RelayUnreachableError(`no answer from the relay at ${where} within ${timeoutMs} ms`);
    const message = (error as Error).message;
    throw new RelayUnreachableError(`cannot reach the relay at ${where}: ${message}`, { cause: error });
  } finally {
    timer.close();
    signal?.removeEventListener('abort', onAbort);
    socket.off('data', onData);
    // Flowing mode would drop chunks while nobody listens; attach() resumes.
    socket.pause();
  }
  if (failure !== undefined || hello === undefined) {
    socket.destroy();
    throw failure ?? new RelayUnreachableError(`the relay at ${where} did not answer Hello`);
  }
  logger.debug({ relay: where, virtualIp: formatIpv4(hello.ip) }, 'connected to relay');
  session = new RelaySession(socket, decoder, hello, logger, clock);
  return { session, buffered };
}
