/**
 * Datagram ports (docs/PROTOCOL.md §10): a port space of each virtual host apart from its
 * stream ports (§5), as UDP's is apart from TCP's. A port is held by one connection of the host;
 * DatagramBind answers BindResponse with the same statuses as BindRequest. An expected refusal is
 * a BindStatus returned, not an exception.
 */
import { BindStatus } from '../../protocol/index.ts';
import type { RelayCounters } from './counters.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import { DatagramRates, type DatagramBucket } from './datagram-rate.ts';
import type { Connection } from './connection.ts';
import { claimPort, type BindResult, type PortSpace } from './hosts.ts';

/** What one connection holds: its ports and its host's rate bucket. */
export interface DatagramHolder {
  ports: Set<number>;
  bucket: DatagramBucket;
}

/** Datagram ports by virtual IP, who holds them, and the per-host rate buckets. */
export class DatagramPortTable {
  /** One host's datagram ports, by virtual IP. */
  readonly #hosts = new Map<number, PortSpace>();
  readonly #holders = new Map<Connection, DatagramHolder>();
  readonly #options: ResolvedRelayOptions;
  readonly #counters: RelayCounters;
  readonly rates: DatagramRates;

  constructor(options: ResolvedRelayOptions, counters: RelayCounters) {
    this.#options = options;
    this.#counters = counters;
    this.rates = new DatagramRates(options);
  }

  /** The connection holding datagram port `port` of virtual IP `ip`, if any (one lookup per map, no allocation). */
  holder(ip: number, port: number): Connection | undefined {
    return this.#hosts.get(ip)?.ports.get(port);
  }

  /** What `conn` holds, if it holds any datagram port. */
  held(conn: Connection): DatagramHolder | undefined {
    return this.#holders.get(conn);
  }

  /** §10: binds datagram port `port` (0: an ephemeral one) on the connection's host. */
  bind(conn: Connection, port: number, now: number): BindResult {
    const ip = conn.host!.ip;
    const holder = this.#holders.get(conn);
    const held = holder?.ports.size ?? 0;
    // Datagram ports count against the same per-connection and relay-wide bounds as stream ports.
    if (conn.ports.size + conn.pairs.size + held >= this.#options.maxSocketsPerClient) return { status: BindStatus.LimitReached, port };
    if (this.#counters.boundPortCount + this.#counters.datagramPortCount >= this.#options.maxBoundPorts) {
      return { status: BindStatus.LimitReached, port, limit: 'maxBoundPorts' };
    }
    let host = this.#hosts.get(ip);
    if (host === undefined) this.#hosts.set(ip, (host = { ports: new Map(), ephemeral: undefined }));
    const claimed = claimPort(host, conn, port);
    if (claimed.status !== BindStatus.Ok) {
      // A host entry this bind made, still empty, goes again.
      if (host.ports.size === 0) this.#hosts.delete(ip);
      return claimed;
    }
    port = claimed.port;
    if (holder === undefined) this.#holders.set(conn, { ports: new Set([port]), bucket: this.rates.join(conn.hostKey, now) });
    else holder.ports.add(port);
    this.#counters.datagramPortCount++;
    return { status: BindStatus.Ok, port };
  }

  /** §10: frees datagram port `port` if this connection holds it; false when it did not. */
  unbind(conn: Connection, port: number): boolean {
    const holder = this.#holders.get(conn);
    if (holder === undefined || !holder.ports.has(port)) return false;
    this.#free(conn.host!.ip, port);
    holder.ports.delete(port);
    if (holder.ports.size === 0) {
      this.#holders.delete(conn);
      this.rates.leave(conn.hostKey);
    }
    return true;
  }

  /** The connection ended: every datagram port it held is free. */
  leave(conn: Connection): void {
    const holder = this.#holders.get(conn);
    if (holder === undefined || conn.host === undefined) return;
    for (const port of holder.ports) this.#free(conn.host.ip, port);
    this.#holders.delete(conn);
    this.rates.leave(conn.hostKey);
  }

  #free(ip: number, port: number): void {
    const host = this.#hosts.get(ip);
    if (host === undefined) return;
    host.ports.delete(port);
    host.ephemeral?.release(port);
    this.#counters.datagramPortCount--;
    if (host.ports.size === 0) this.#hosts.delete(ip);
  }
}
