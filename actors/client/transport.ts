/**
 * The byte stream a relay session runs over (docs/PROTOCOL.md "Transports"): TCP in Node
 * (tcp-transport.ts), a WebSocket in a browser or in Node (web-socket-transport.ts). The session
 * writes frames and reads a byte stream; it never learns which transport carries them. Nothing
 * here imports Node, so the browser bundle can hold it.
 */
import type { RelayTrustOptions } from './relay-trust.ts';

/** What a transport tells its reader. */
export interface TransportListener {
  /** Bytes in order; any chunking (a frame may span chunks, a chunk may hold several frames). */
  data(chunk: Uint8Array): void;
  /** The transport is gone; called once. `error` says why when it failed. */
  close(error: Error | undefined): void;
}

/** An open connection to the relay. */
export interface SessionTransport {
  /** Where it goes, for messages: "host:port" or the URL. */
  readonly where: string;
  /** True once it has closed. */
  readonly closed: boolean;
  /** Writes bytes; false when the writer should wait for {@link drained}. */
  write(bytes: Uint8Array): boolean;
  /**
   * Writes a data frame's head and payload without joining them; `flushed` is called once
   * `payload` is no longer referenced. Returns as write() does.
   */
  writeData(head: Uint8Array, payload: Uint8Array, flushed?: () => void): boolean;
  /** Writes frames together (one writev on TCP); returns as write() does. */
  writeFrames(frames: readonly Uint8Array[]): boolean;
  /** Bytes written that the transport has not handed on yet. */
  readonly unflushedBytes: number;
  /** True while writers should wait. */
  readonly needsDrain: boolean;
  /** Resolves when writers may go on (or the transport closed). One promise for all waiters. */
  drained(): Promise<void>;
  /** Who hears data and close from now on. */
  listen(listener: TransportListener): void;
  /** No data is delivered until resume() (what arrives meanwhile waits, in order). */
  pause(): void;
  resume(): void;
  /** Closes at once: what is still queued for the relay is dropped. */
  destroy(): void;
  /**
   * Closes once what was written has left (TCP: the queue goes to the kernel, then FIN; a
   * WebSocket sends its queue before its close frame). Resolves when closed; a relay that stops
   * reading cannot hold it open past a bounded wait.
   */
  end(): Promise<void>;
}

/** Where a client dials: host and port for TCP, or a ws:// / wss:// URL. */
export interface TransportTarget {
  host: string;
  port: number;
  /** A WebSocket URL; when set, host and port only name it in messages. */
  url: string | undefined;
  /** The real source address to dial from (Node only). */
  localAddress: string | undefined;
  /**
   * TCP, or a wss:// URL in Node: TLS 1.3 with the relay's key checked (relay-trust.ts) before the
   * transport is handed back. A browser's WebSocket ignores it (the browser's own authorities judge).
   */
  tls?: RelayTrustOptions | undefined;
}

/** Why a transport could not open, in words; `cause` is what the platform reported. */
export class TransportOpenError extends Error {}

/**
 * Opens a transport; rejects with an Error saying why it could not (its message is put after
 * "cannot reach the relay at …:"; a TransportOpenError's cause becomes the ClientError's), or
 * with the signal's reason once `signal` aborts.
 */
export type TransportOpener = (target: TransportTarget, signal: AbortSignal) => Promise<SessionTransport>;

/** One Uint8Array of `pieces` (no Buffer: this runs in browsers too). */
export function concatBytes(pieces: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}
