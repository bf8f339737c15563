/**
 * The session over a WebSocket (docs/PROTOCOL.md "Transports"): every write is one binary
 * message, and received binary messages are the byte stream, whatever their boundaries. It uses
 * only the WHATWG WebSocket API, so it runs on a browser's global `WebSocket` and, in Node, on
 * the `ws` package's (which node-platform.ts passes in: Node 20 has no global one). Nothing here
 * imports Node.
 *
 * The WebSocket API has no 'drain' event: while more than WS_WRITE_HIGH_WATER_MARK_BYTES wait in
 * `bufferedAmount`, writers are told to wait and drained() looks again every
 * WS_DRAIN_POLL_MS until it is below half that.
 */
import type { SessionTransport, TransportListener, TransportOpener, TransportTarget } from './transport.ts';

/** Bytes queued in the WebSocket before writers wait, as the TCP transport's high-water mark. */
export const WS_WRITE_HIGH_WATER_MARK_BYTES = 1024 * 1024;
/** How often drained() looks at `bufferedAmount` while writers wait. */
export const WS_DRAIN_POLL_MS = 5;

/** The part of the WHATWG WebSocket a transport uses (a browser's, or the `ws` package's). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** Makes a WebSocket to `url` (from `localAddress` where the implementation can). */
export type WebSocketFactory = (url: string, localAddress: string | undefined) => WebSocketLike;

const OPEN = 1;
const CLOSED = 3;
const CLOSE_NORMAL = 1000;
/** How long end() waits for the closing handshake (a relay that stopped reading). */
export const WS_END_TIMEOUT_MS = 5_000;

/** What close codes the relay or the network may end a WebSocket with mean (RFC 6455 §7.4.1). */
function describeClose(code: number, reason: string): string {
  const meaning: Record<number, string> = {
    1001: 'the relay is going away',
    1002: 'a WebSocket protocol error',
    1003: 'a message of a kind the relay does not take',
    1006: 'the connection dropped without a closing handshake',
    1008: 'a policy violation',
    1009: 'a message was larger than the relay accepts',
    1011: 'an error in the relay',
  };
  const what = meaning[code] ?? 'closed';
  return `the WebSocket closed: ${what} (code ${code}${reason ? `, ${reason}` : ''})`;
}

/** An open WebSocket as a SessionTransport. */
export class WebSocketTransport implements SessionTransport {
  readonly where: string;
  readonly #ws: WebSocketLike;
  #listener: TransportListener | undefined;
  #paused = true;
  /** Messages that arrived while paused; the WebSocket API cannot stop reading. */
  #held: Uint8Array[] = [];
  #closed = false;
  #closeError: Error | undefined;
  #drain: Promise<void> | undefined;
  /** Set by end(): told when the WebSocket itself has closed. */
  #socketClosed: (() => void) | undefined;

  /** `ws` must be open. */
  constructor(ws: WebSocketLike, where: string) {
    this.#ws = ws;
    this.where = where;
    ws.onmessage = (event) => this.#wsOnMessage(event.data);
    ws.onclose = (event) => {
      this.#socketClosed?.();
      this.#wsOnClose(event.code, event.reason);
    };
    ws.onerror = () => {};
  }

  #wsOnMessage(data: unknown): void {
    if (this.#closed) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#closeError = new Error('the relay sent a text WebSocket message: AlphaNET frames travel in binary messages');
      this.destroy();
      return;
    }
    const chunk = new Uint8Array(data);
    if (this.#paused || this.#held.length > 0) this.#held.push(chunk);
    else this.#listener?.data(chunk);
  }

  #wsOnClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = [];
    const error = this.#closeError ?? (code === CLOSE_NORMAL ? undefined : new Error(describeClose(code, reason)));
    this.#listener?.close(error);
  }

  get closed(): boolean {
    return this.#closed;
  }

  listen(listener: TransportListener): void {
    this.#listener = listener;
  }

  write(bytes: Uint8Array): boolean {
    if (this.#closed || this.#ws.readyState !== OPEN) return false;
    this.#ws.send(bytes);
    return !this.needsDrain;
  }

  /**
   * Head and payload as two messages (a frame may span messages): no copy of ours. send() has
   * taken its own copy when it returns (a browser buffers it, `ws` masks it into a new buffer),
   * so the payload is released at once.
   */
  writeData(head: Uint8Array, payload: Uint8Array, flushed?: () => void): boolean {
    // Both halves or neither: write()'s false means "wait before more", not "not sent", and a
    // head sent without its payload would put the relay's frame reader out of step.
    if (this.#closed || this.#ws.readyState !== OPEN) {
      flushed?.();
      return false;
    }
    this.#ws.send(head);
    this.#ws.send(payload);
    flushed?.();
    return !this.needsDrain;
  }

  /** A message per frame: the WebSocket API has no writev, and frames may share nothing. */
  writeFrames(frames: readonly Uint8Array[]): boolean {
    for (const frame of frames) this.write(frame);
    return !this.#closed && !this.needsDrain;
  }

  get unflushedBytes(): number {
    return this.#closed ? 0 : this.#ws.bufferedAmount;
  }

  get needsDrain(): boolean {
    return !this.#closed && this.#ws.bufferedAmount > WS_WRITE_HIGH_WATER_MARK_BYTES;
  }

  drained(): Promise<void> {
    if (!this.needsDrain) return Promise.resolve();
    this.#drain ??= new Promise<void>((resolve) => {
      const look = (): void => {
        if (this.#closed || this.#ws.bufferedAmount <= WS_WRITE_HIGH_WATER_MARK_BYTES / 2) {
          this.#drain = undefined;
          resolve();
        } else setTimeout(look, WS_DRAIN_POLL_MS);
      };
      setTimeout(look, WS_DRAIN_POLL_MS);
    });
    return this.#drain;
  }

  pause(): void {
    this.#paused = true;
  }

  /** Delivers what was held (on a later tick, as a socket's resume() does), then reads live. */
  resume(): void {
    this.#paused = false;
    if (this.#held.length === 0) return;
    queueMicrotask(() => {
      while (!this.#paused && !this.#closed && this.#held.length > 0) this.#listener?.data(this.#held.shift()!);
    });
  }

  destroy(): void {
    if (this.#closed) return;
    try {
      this.#ws.close(CLOSE_NORMAL);
    } catch {
      // Already closing: the close event still comes.
    }
    // The WebSocket's close event can take a closing handshake; the session is gone now.
    this.#wsOnClose(CLOSE_NORMAL, '');
  }

  /**
   * A WebSocket's close sends what it queued before its close frame; this resolves when its
   * closing handshake is over, or after WS_END_TIMEOUT_MS.
   */
  end(): Promise<void> {
    if (this.#ws.readyState === CLOSED) return Promise.resolve();
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, WS_END_TIMEOUT_MS);
      // Node's timers can be unref'd (a browser's are numbers): the wait keeps no process alive.
      (timer as { unref?: () => void }).unref?.();
      this.#socketClosed = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.destroy();
    return closed;
  }
}

/** Opens a WebSocket through `factory` and resolves once it is open. */
export function webSocketOpener(factory: WebSocketFactory): TransportOpener {
  return (target: TransportTarget, signal: AbortSignal) =>
    new Promise<SessionTransport>((resolve, reject) => {
      const url = target.url ?? `ws://${target.host}:${target.port}/alphanet`;
      let ws: WebSocketLike;
      try {
        ws = factory(url, target.localAddress);
      } catch (error) {
        reject(error);
        return;
      }
      ws.binaryType = 'arraybuffer';
      const onAbort = (): void => {
        // No-ops, not null: `ws` emits 'error' for a socket closed while connecting, and an
        // EventEmitter's 'error' with no listener throws.
        ws.onopen = ws.onclose = ws.onerror = () => {};
        try {
          ws.close();
        } catch {
          // Still connecting: close() may throw in some implementations; it is dropped anyway.
        }
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      // A browser's error event says nothing (on purpose); `ws`'s carries the system error.
      let failure = '';
      ws.onerror = (event: { message?: unknown }) => {
        if (typeof event?.message === 'string') failure = event.message;
      };
      ws.onopen = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(new WebSocketTransport(ws, url));
      };
      ws.onclose = (event) => {
        signal.removeEventListener('abort', onAbort);
        reject(new Error(`the WebSocket did not open (code ${event.code}${event.reason ? `, ${event.reason}` : ''})${failure ? `: ${failure}` : ''}`));
      };
    });
}
