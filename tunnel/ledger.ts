/**
 * What a tunnel has carried: its live splices, totals, and the one log line per connection
 * opened and closed. expose() and forward() each own one ledger.
 */
import type { Socket } from 'node:net';
import type { VirtualConnection } from '../actors/client/index.ts';
import type { Logger } from '../actors/logger.ts';
import { describeError } from '../actors/describe-error.ts';
import { splice } from './splice.ts';
import type { Splice, SpliceOptions } from './splice.ts';

/** A tunnel's counters. Bytes include the live connections' bytes so far. */
export interface TunnelStats {
  /** Connections open now. */
  active: number;
  /** Connections carried since the tunnel started (open or finished). */
  total: number;
  /** Connection attempts refused or failed before a byte moved (denied, offline, target down). */
  refused: number;
  /** Bytes read from TCP sockets and sent into AlphaNET. */
  tcpToVirtualBytes: number;
  /** Bytes received from AlphaNET and written to TCP sockets. */
  virtualToTcpBytes: number;
}

/** Fields that name a connection in its log lines (addresses, ports). */
export type ConnectionFields = Record<string, string | number>;

/** Counts, logs and tears down one tunnel's connections. */
export class TunnelLedger {
  readonly #logger: Logger;
  readonly #live = new Set<Splice>();
  #nextId = 1;
  #total = 0;
  #refused = 0;
  #tcpToVirtualBytes = 0;
  #virtualToTcpBytes = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #spliceOptions: SpliceOptions;

  constructor(logger: Logger, spliceOptions: SpliceOptions = {}) {
    this.#logger = logger;
    this.#spliceOptions = spliceOptions;
  }

  /** Splices `tcp` to `connection`, logging the open now and the close with its byte counts. */
  carry(tcp: Socket, connection: VirtualConnection, fields: ConnectionFields): void {
    const id = this.#nextId++;
    const started = performance.now();
    const s = splice(tcp, connection, this.#spliceOptions);
    this.#live.add(s);
    this.#total++;
    this.#logger.info({ conn: id, ...fields, connectionId: connection.connectionId }, 'connection opened');
    void s.done.then((result) => {
      this.#live.delete(s);
      this.#tcpToVirtualBytes += result.tcpToVirtualBytes;
      this.#virtualToTcpBytes += result.virtualToTcpBytes;
      const line = {
        conn: id,
        ...fields,
        tcpToVirtualBytes: result.tcpToVirtualBytes,
        virtualToTcpBytes: result.virtualToTcpBytes,
        durationMs: Math.round(performance.now() - started),
        ...(result.error ? { reason: describe(result.error) } : {}),
      };
      this.#logger.info(line, result.error ? 'connection reset' : 'connection closed');
      if (this.#live.size === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
    });
  }

  /** Records an attempt that never carried a byte, and why. */
  refuse(fields: ConnectionFields, error: unknown): void {
    this.#refused++;
    this.#logger.warn({ ...fields, reason: describe(error) }, 'connection refused');
  }

  /** Live connections. */
  get active(): number {
    return this.#live.size;
  }

  stats(): TunnelStats {
    let tcpToVirtualBytes = this.#tcpToVirtualBytes;
    let virtualToTcpBytes = this.#virtualToTcpBytes;
    for (const s of this.#live) {
      tcpToVirtualBytes += s.tcpToVirtualBytes;
      virtualToTcpBytes += s.virtualToTcpBytes;
    }
    return { active: this.#live.size, total: this.#total, refused: this.#refused, tcpToVirtualBytes, virtualToTcpBytes };
  }

  /** Resets every live connection and resolves once all have closed. */
  async destroyAll(): Promise<void> {
    for (const s of this.#live) s.destroy();
    await this.idle();
  }

  /** Resolves once no connection is live (at once if none is). */
  idle(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }
}

/**
 * "CODE: message" for a log line's reason, so a reader can grep the stable code; a system
 * error's code is said once (actors/describe-error.ts).
 */
export const describe = describeError;
