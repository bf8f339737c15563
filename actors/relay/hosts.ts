/**
 * The virtual hosts (§2.3) and their ports (§5): which connections share a virtual IP, which
 * connection holds each bound port, and each host's ephemeral allocator. An expected refusal
 * (port in use, no free port, a limit) is a BindStatus returned, not an exception.
 */
import { BindStatus, formatIpv4 } from '../../protocol/index.ts';
import type { RelayCounters } from './counters.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import { PortAllocator } from './port-allocator.ts';
import type { Connection } from './connection.ts';

/** One port space of a host (its stream ports, §5, or its datagram ports, §10): who holds each port. */
export interface PortSpace {
  ports: Map<number, Connection>;
  /** Ephemeral ports (§5), made on the space's first bind in the range. */
  ephemeral: PortAllocator | undefined;
}

/** The connections of one client machine, sharing its virtual IP and its (stream) ports. */
export interface VirtualHost extends PortSpace {
  ip: number;
  ipText: string;
  conns: Set<Connection>;
}

/** A bind's answer: the BindStatus and port to reply, and the relay-wide bound that refused it. */
export interface BindResult {
  status: number;
  port: number;
  limit?: 'maxBoundPorts';
}

/**
 * §5 (and §10): gives `conn` port `port` of `space`, or a free ephemeral one for port 0; the
 * refusal when the port is held or no ephemeral port is free. The caller has checked its limits.
 */
export function claimPort(space: PortSpace, conn: Connection, port: number): BindResult {
  if (port === 0) {
    const picked = (space.ephemeral ??= new PortAllocator()).allocate();
    if (picked === undefined) return { status: BindStatus.NoFreePort, port: 0 };
    port = picked;
  } else if (space.ports.has(port)) {
    return { status: BindStatus.AddressInUse, port };
  } else if (PortAllocator.inRange(port)) {
    (space.ephemeral ??= new PortAllocator()).take(port);
  }
  space.ports.set(port, conn);
  return { status: BindStatus.Ok, port };
}

/** Virtual hosts by virtual IP, and what each has bound. */
export class HostTable {
  readonly #hosts = new Map<number, VirtualHost>();
  readonly #options: ResolvedRelayOptions;
  readonly #counters: RelayCounters;

  constructor(options: ResolvedRelayOptions, counters: RelayCounters) {
    this.#options = options;
    this.#counters = counters;
  }

  get size(): number {
    return this.#hosts.size;
  }

  /** The host of a virtual IP, if any of its connections is here. */
  get(ip: number): VirtualHost | undefined {
    return this.#hosts.get(ip);
  }

  /** §2.3: the connection joins the virtual host of its address. */
  join(conn: Connection, virtualIp: number): VirtualHost {
    let host = this.#hosts.get(virtualIp);
    if (host === undefined) {
      host = { ip: virtualIp, ipText: formatIpv4(virtualIp), conns: new Set(), ports: new Map(), ephemeral: undefined };
      this.#hosts.set(virtualIp, host);
    }
    host.conns.add(conn);
    conn.host = host;
    return host;
  }

  /** The connection leaves its host, freeing the ports it held; an empty host goes. */
  leave(conn: Connection): void {
    const host = conn.host;
    if (host === undefined) return;
    for (const port of conn.ports) {
      if (host.ports.get(port) === conn) {
        host.ports.delete(port);
        host.ephemeral?.release(port);
        this.#counters.boundPortCount--;
      }
    }
    host.conns.delete(conn);
    if (host.conns.size === 0) this.#hosts.delete(host.ip);
  }

  /** §5: binds `port` (0: an ephemeral one) on the connection's host. */
  bind(conn: Connection, port: number): BindResult {
    const host = conn.host!;
    if (conn.ports.size + conn.pairs.size >= this.#options.maxSocketsPerClient) return { status: BindStatus.LimitReached, port };
    if (this.#counters.boundPortCount >= this.#options.maxBoundPorts) {
      return { status: BindStatus.LimitReached, port, limit: 'maxBoundPorts' };
    }
    const claimed = claimPort(host, conn, port);
    if (claimed.status !== BindStatus.Ok) return claimed;
    conn.ports.add(claimed.port);
    this.#counters.boundPortCount++;
    return claimed;
  }

  /** §5: frees `port` if this connection holds it; false when it did not. */
  unbind(conn: Connection, port: number): boolean {
    const host = conn.host!;
    if (host.ports.get(port) !== conn) return false;
    host.ports.delete(port);
    host.ephemeral?.release(port);
    conn.ports.delete(port);
    this.#counters.boundPortCount--;
    return true;
  }
}
