/**
 * What a Connection and its Outbound use of their transport: the part of net.Socket's API the
 * relay touches. A TCP socket is one as it is; a WebSocket connection is one through
 * ws-transport.ts. Keeping the surface this small is what lets a new transport reuse admission,
 * the bounds, keepalive and backpressure unchanged (docs/ARCHITECTURE.md "Where new things go").
 */
export interface RelaySocket {
  /** The peer's address as the transport saw it (the relay computes the real IP from it). */
  readonly remoteAddress?: string | undefined;
  /** False once the write side is ended or the transport is gone. */
  readonly writable: boolean;
  readonly destroyed: boolean;
  /** Bytes written and not yet taken by the kernel: the relay's backpressure measure (§7). */
  readonly writableLength: number;
  /**
   * Bytes the kernel has taken off the queue so far, in writableLength's unit, where that unit is
   * not the bytes written: a WebSocket's queue also holds each message's header (and frames ws
   * writes itself), so bytes written less the queue would move with every message queued. The
   * slow-consumer sweep measures a receiver's progress by it (§7). @default bytes written less
   * writableLength (a TCP socket's queue holds exactly the bytes written)
   */
  readonly bytesTaken?: number;
  /**
   * Bytes read and held for input not yet handed out as 'data' (a WebSocket message under way,
   * which ws delivers only whole). The relay counts them as bytes of a frame under way: toward
   * the incomplete-frame budget and the frame timeout (docs/RELAY.md "Bounds"). The transport
   * emits 'unfinished' after a read that may have changed them. @default 0 (a TCP socket hands
   * out every byte it reads)
   */
  readonly unfinishedBytes?: number;
  write(bytes: Uint8Array): boolean;
  /** Ends the write side after what is queued. */
  end(): unknown;
  /** Writes `bytes` last, then ends the write side. */
  end(bytes: Uint8Array): unknown;
  destroy(): unknown;
  /** Writes until uncork() leave together (one writev on TCP). */
  cork(): void;
  uncork(): void;
  /** No 'data' until resume(). */
  pause(): unknown;
  resume(): unknown;
  setNoDelay(noDelay?: boolean): unknown;
  /** 'data' (chunk: Buffer), 'drain', 'close', 'error' (error: Error), 'unfinished' (see unfinishedBytes). */
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
}
