/** The session's TCP transport (Node): one net.Socket, its backpressure, pause and resume. */
import type net from 'node:net';
import { dialRelaySocket, relayWhere } from './relay-dial.ts';
import type { SessionTransport, TransportListener, TransportOpener } from './transport.ts';

/**
 * Bytes the relay connection may queue in the process before writers are asked to wait for
 * 'drain'. Node's default (16 KiB) is a quarter of one data frame, so every 64 KiB write would
 * wait for a drain; this holds a few frames, and the kernel's send buffer is far larger anyway.
 */
export const SESSION_WRITE_HIGH_WATER_MARK_BYTES = 1024 * 1024;

/**
 * Transports holding frames corked for this turn. A script that writes its last frames and then
 * exits in the same turn (`await conn.end(); process.exit(0)`) would lose them with the tick that
 * never comes: on 'exit' they are written out at once (libuv tries a write synchronously).
 */
const corkedNow = new Set<{ flushNow(): void }>();
let exitHooked = false;
function flushCorkedOnExit(transport: { flushNow(): void }): void {
  corkedNow.add(transport);
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const corked of corkedNow) corked.flushNow();
  });
}

/** How long a closing client waits for its queued bytes to leave before it drops them. */
export const END_TIMEOUT_MS = 5_000;

/** A connected socket as a SessionTransport. */
export class TcpTransport implements SessionTransport {
  readonly where: string;
  readonly #socket: net.Socket;
  #drain: Promise<void> | undefined;
  #listener: TransportListener | undefined;
  #closed = false;
  #closeError: Error | undefined;

  constructor(socket: net.Socket, where: string) {
    this.#socket = socket;
    this.where = where;
    // Flowing mode would drop chunks before the session listens: the transport starts paused.
    socket.pause();
    socket.on('data', (chunk: Buffer) => this.#listener?.data(chunk));
    // An error is reported at once, not at the 'close' after it: the session fails as soon as
    // the socket does.
    socket.on('error', (error) => this.#ended(error));
    socket.once('close', () => this.#ended(undefined));
  }

  #ended(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#listener?.close(error);
  }

  get closed(): boolean {
    return this.#closed || this.#socket.destroyed;
  }

  listen(listener: TransportListener): void {
    this.#listener = listener;
    // Closed before anyone listened (e.g. during the trust check): the new listener hears it.
    if (this.#closed) listener.close(this.#closeError);
  }

  write(bytes: Uint8Array): boolean {
    this.#corkForTurn();
    return this.#socket.write(bytes);
  }

  /**
   * Frames written in one turn of the event loop (the answers to one read's requests, a burst of
   * connects) leave in one write on the next tick, not a system call each: with fifty
   * connects in flight, one write per control frame was ~15 % of an e2e connect's CPU.
   */
  #corkForTurn(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    flushCorkedOnExit(this);
    process.nextTick(this.#uncork);
  }

  #corked = false;
  readonly #uncork = (): void => {
    if (!this.#corked) return;
    this.#corked = false;
    corkedNow.delete(this);
    this.#socket.uncork();
  };

  /** @internal Writes out what this turn corked, now (process exit). */
  flushNow(): void {
    this.#uncork();
  }

  /** Head and payload in one writev; `flushed` once the kernel took the payload. */
  writeData(head: Uint8Array, payload: Uint8Array, flushed?: () => void): boolean {
    this.#socket.cork();
    this.#socket.write(head);
    const ok = this.#socket.write(payload, flushed);
    this.#socket.uncork();
    return ok;
  }

  writeFrames(frames: readonly Uint8Array[]): boolean {
    this.#socket.cork();
    for (const frame of frames) this.#socket.write(frame);
    this.#socket.uncork();
    return !this.#socket.writableNeedDrain;
  }

  get unflushedBytes(): number {
    return this.#socket.writableLength;
  }

  get needsDrain(): boolean {
    return this.#socket.writableNeedDrain;
  }

  /**
   * Every writer waiting shares one promise and one pair of listeners, however many connections
   * wait (with more than ten, a listener each made Node warn of a leak: issue 15).
   */
  drained(): Promise<void> {
    if (!this.#socket.writableNeedDrain || this.closed) return Promise.resolve();
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

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  destroy(): void {
    // What this turn wrote (a goodbye, a close) is handed to the socket first: destroy() drops
    // what is still corked (and, as ever, what the kernel has not taken yet).
    this.#uncork();
    this.#socket.destroy();
  }

  /**
   * A client's close(): what the socket still queues (a last send, an end) reaches the relay
   * before the FIN, which destroy() would drop. The relay closes its side at our FIN; one that
   * stops reading gets END_TIMEOUT_MS, then the socket is destroyed.
   */
  end(): Promise<void> {
    this.#uncork();
    const socket = this.#socket;
    if (socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => socket.destroy(), END_TIMEOUT_MS);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // Whatever the relay still sends is not read any more: the session is over.
      socket.resume();
      socket.end();
    });
  }
}

/**
 * Dials TCP to `target.host:target.port` (from `localAddress` if given), under TLS 1.3 when
 * `target.tls` says so. No certificate authority: the relay's key is checked against the pin
 * (relay-dial.ts, relay-trust.ts) before the transport is handed back, so a relay we do not
 * trust hears no protocol byte from us.
 */
export const openTcpTransport: TransportOpener = async (target, signal) => {
  const where = relayWhere(target.host, target.port);
  let transport: TcpTransport | undefined;
  const dial = {
    host: target.host,
    port: target.port,
    localAddress: target.localAddress,
    trust: target.tls,
    where,
    highWaterMark: SESSION_WRITE_HIGH_WATER_MARK_BYTES,
    plaintextHint: 'connect with --plaintext',
  };
  // Made before the trust check, so a relay that answers or closes meanwhile is heard (paused).
  await dialRelaySocket(dial, signal, (socket) => (transport = new TcpTransport(socket, where)));
  return transport!;
};
