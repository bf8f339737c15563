/**
 * One connection from a client to the relay (TCP or WebSocket: transport.ts), the only owner of
 * that transport. It does the
 * Hello handshake (docs/PROTOCOL.md §2), answers Ping at once and treats a relay silent past
 * its keepalive timeout as lost (§4), matches answers to requests by id with a timeout each
 * (§3), and hands every other frame to the client. All output goes through `write()`.
 */
import {
  ARBITRARY_DATA_HEADER_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  CloseReason,
  ConnectionStatus,
  ERROR_CODE_NAMES,
  MAX_WINDOW_BYTES,
  MIN_MAX_FRAME_BYTES,
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
import type { RelayTrustOptions } from './relay-trust.ts';
import { looksLikeIpv6 } from './relay-address.ts';
import type { ClientTimer, Clock } from './timer.ts';
import { TransportOpenError, concatBytes } from './transport.ts';
import type { SessionTransport, TransportOpener } from './transport.ts';

/** Answers the relay sends to a client's own requests. */
export type AnswerPacket = Extract<
  Packet,
  { type: 0x11 | 0x21 | 0x22 | 0x24 }
>;

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
  /** A WebSocket URL to dial instead of host:port over TCP. */
  url: string | undefined;
  localAddress: string | undefined;
  /** Opens the transport (TCP, WebSocket): the platform's (node-platform.ts, browser.ts). */
  open: TransportOpener;
  /** Time allowed for the transport to open plus Hello → VirtualIP, in ms. */
  timeoutMs: number;
  signal: AbortSignal | undefined;
  logger: Logger;
  /** The clock of the connect, keepalive and request timeouts; undefined for real time. */
  clock: Clock | undefined;
  /** TLS 1.3 with the relay's key checked (relay-trust.ts) for TCP; undefined for plain TCP. */
  tls: RelayTrustOptions | undefined;
  /** Proves this key at Hello (§2a, Hello version 2); undefined says Hello version 1. */
  identity?: HelloIdentity | undefined;
}

/**
 * The identity a session proves at Hello: its public key, and the signing of a Challenge, which
 * the platform does (identity.ts in Node). Given, not imported, so this file stays browser-safe.
 */
export interface HelloIdentity {
  readonly publicKey: Uint8Array;
  /** The signature over IDENTITY_PROOF_CONTEXT ‖ challenge (§2a). */
  signChallenge(challenge: Uint8Array): Uint8Array;
}

/** The first byte of a TLS alert record: what a relay serving TLS answers a plain Hello with. */
const TLS_ALERT_RECORD = 0x15;

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
  #socket: SessionTransport;
  #decoder: FrameReader;
  #handler: SessionHandler | undefined;
  #pending = new Map<number, PendingRequest>();
  #nextRequestId = 1;
  #keepalive: ClientTimer;
  #lost: ClientError | undefined;
  #logger: Logger;
  #clock: Clock | undefined;

  /** Use {@link dialSession}. */
  constructor(socket: SessionTransport, decoder: FrameReader, hello: Extract<Packet, { type: 0x02 }>, logger: Logger, clock: Clock | undefined) {
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
    this.#socket.listen({
      data: (chunk) => {
        const error = this.#decoder.push(chunk);
        if (error) this.#fail(new RelayLostError(`the relay sent bad bytes: ${error.message}`, { cause: error }));
      },
      close: (error) =>
        this.#fail(
          error === undefined
            ? new RelayLostError('the connection to the relay closed')
            : new RelayLostError(`the connection to the relay failed: ${error.message}`, { cause: error }),
        ),
    });
    if (this.#socket.closed) this.#fail(new RelayLostError('the connection to the relay closed'));
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
      case PacketType.Datagram:
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
        if (request === undefined) {
          // Answered after our timeout: nobody waits any more. A connection the relay opened for
          // it would stay open, its peer waiting, until the idle timeout: closed at once.
          if (packet.type === PacketType.SocketConnectionResponse && packet.status === ConnectionStatus.Accepted) this.closeUnwanted(packet.connectionId);
          return;
        }
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

  /** Closes a connection the relay opened that nothing here will use (a connect given up on). */
  closeUnwanted(connectionId: number): void {
    this.write(encodePacket({ type: PacketType.SocketClosed, connectionId, reason: CloseReason.Normal }));
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
    return this.#socket.writeData(head, payload, flushed);
  }

  /** Writes frames in one writev (the client batches datagrams until the event loop turns). */
  writeFrames(frames: readonly Uint8Array[]): boolean {
    if (this.#lost) return false;
    return this.#socket.writeFrames(frames);
  }

  /** Bytes written to the relay connection that the kernel has not taken yet. */
  get unflushedBytes(): number {
    return this.#lost ? 0 : this.#socket.unflushedBytes;
  }

  /** True when the transport's send buffer is above its high-water mark. */
  get needsDrain(): boolean {
    return this.#socket.needsDrain;
  }

  /**
   * Resolves when the transport's send buffer has drained (or the session ended); every writer
   * waiting shares one promise (transport.ts).
   */
  drained(): Promise<void> {
    if (this.#lost) return Promise.resolve();
    return this.#socket.drained();
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

  /** Closes the TCP connection at once; pending requests fail with `error`. */
  close(error: ClientError = new RelayLostError('the client closed its connection to the relay')): void {
    this.#fail(error);
  }

  /**
   * The client's own close: as {@link close}, but what was already written (data, ends) leaves
   * first; resolves once the connection is closed.
   */
  end(error: ClientError): Promise<void> {
    if (this.#lost) return Promise.resolve();
    // Failed first, so pending requests hear `error`, not the transport's close that end() may
    // report at once (a WebSocket's).
    this.#fail(error, false);
    return this.#socket.end();
  }

  #fail(error: ClientError, destroy = true): void {
    if (this.#lost) return;
    this.#lost = error;
    this.#keepalive.close();
    this.#decoder.stop();
    for (const request of this.#pending.values()) {
      request.timer.close();
      request.reject(error);
    }
    this.#pending.clear();
    if (destroy) this.#socket.destroy();
    this.#handler?.onLost(error);
  }
}

/** The largest frame a client accepts, whatever the relay allows: a full window of data and its head. */
const MAX_ACCEPTED_FRAME_BYTES = MAX_WINDOW_BYTES + 64;

/** Opens the transport to the relay, says Hello and waits for VirtualIP. Rejects with a ClientError. */
export async function dialSession(options: DialOptions): Promise<{ session: RelaySession; buffered: Array<[number, Uint8Array]> }> {
  const { host, port, url, localAddress, timeoutMs, signal, logger, clock, identity } = options;
  signal?.throwIfAborted();
  const where = url ?? (looksLikeIpv6(host) ? `[${host}]:${port}` : `${host}:${port}`);
  // A relay serving TLS answers a plain Hello with a TLS alert record (content type 21).
  let firstByte: number | undefined;
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
    else if (packet.type === PacketType.VirtualIp) {
      if (packet.maxFrameBytes < MIN_MAX_FRAME_BYTES) {
        failure = new RelayUnreachableError(`${where} announced frames of at most ${packet.maxFrameBytes} bytes, below the protocol's minimum of ${MIN_MAX_FRAME_BYTES}`);
        return;
      }
      hello = packet;
      // The relay forwards frames up to the limit it announced (--max-frame-bytes): accept them
      // too, or a peer's large send would end this session. A data frame never exceeds the
      // window this end grants, so more than that is never needed.
      decoder.maxFrameBytes = Math.min(Math.max(DEFAULT_MAX_FRAME_BYTES, packet.maxFrameBytes), MAX_ACCEPTED_FRAME_BYTES);
    }
    else if (packet.type === PacketType.Challenge && identity !== undefined) {
      // §2a: sign the relay's fresh challenge; VirtualIP follows once it verifies.
      socket?.write(encodePacket({ type: PacketType.IdentityProof, publicKey: identity.publicKey, signature: identity.signChallenge(packet.nonce) }));
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
        else onFrame(PacketType.ArbitraryData, concatBytes(pieces, frameBytes));
      },
    },
    { maxFrameBytes: DEFAULT_MAX_FRAME_BYTES },
  );
  const ac = new AbortController();
  const timer = startTimer(clock, timeoutMs, () => ac.abort());
  const onAbort = (): void => ac.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let socket: SessionTransport | undefined;
  try {
    // The client decided the trust for TCP and for wss alike (client.ts relayTrustFor).
    socket = await options.open({ host, port, url, localAddress, tls: options.tls }, ac.signal);
    const open = socket;
    // Settles on VirtualIP or a refusal (answered), on the transport's close, or on abort.
    await new Promise<void>((resolve, reject) => {
      const onAbortHandshake = (): void => reject(ac.signal.reason);
      ac.signal.addEventListener('abort', onAbortHandshake, { once: true });
      const settle = (): void => {
        ac.signal.removeEventListener('abort', onAbortHandshake);
        resolve();
      };
      open.listen({
        data: (chunk) => {
          firstByte ??= chunk[0];
          const error = decoder.push(chunk);
          if (error) failure ??= new RelayUnreachableError(`${where} is not an AlphaNET relay: ${error.message}`);
          if (hello !== undefined || failure !== undefined) settle();
        },
        close: (error) => {
          // A relay serving TLS drops a plain Hello without a word.
          const hint = options.tls === undefined && url === undefined ? ' (a relay serving TLS closes plain TCP: connect without --plaintext)' : '';
          failure ??= new RelayUnreachableError(
            `the relay at ${where} closed the connection during the handshake${error ? `: ${error.message}` : ''}${hint}`,
            error ? { cause: error } : undefined,
          );
          settle();
        },
      });
      open.resume();
      open.write(encodePacket({ type: PacketType.Hello, version: identity === undefined ? PROTOCOL_VERSION : IDENTITY_PROTOCOL_VERSION }));
    });
  } catch (error) {
    socket?.destroy();
    if (signal?.aborted) throw signal.reason;
    // The relay's key refused (relay-trust.ts), said as it is.
    if (error instanceof ClientError) throw error;
    if (ac.signal.aborted) throw new RelayUnreachableError(`no answer from the relay at ${where} within ${timeoutMs} ms`);
    // A transport says why in words (TCP: "connection refused (ECONNREFUSED)"), keeping the cause.
    const cause = error instanceof TransportOpenError ? error.cause : error;
    throw new RelayUnreachableError(`cannot reach the relay at ${where}: ${(error as Error).message}`, { cause });
  } finally {
    timer.close();
    signal?.removeEventListener('abort', onAbort);
    // Nothing is delivered while nobody listens; attach() resumes.
    socket?.pause();
  }
  if (options.tls === undefined && url === undefined && firstByte === TLS_ALERT_RECORD && hello === undefined) {
    failure = new RelayUnreachableError(`the relay at ${where} serves TLS: connect without --plaintext (connect({ tls: true }))`);
  }
  if (failure !== undefined || hello === undefined) {
    socket.destroy();
    throw failure ?? new RelayUnreachableError(`the relay at ${where} did not answer Hello`);
  }
  logger.debug({ relay: where, virtualIp: formatIpv4(hello.ip) }, 'connected to relay');
  session = new RelaySession(socket, decoder, hello, logger, clock);
  return { session, buffered };
}
