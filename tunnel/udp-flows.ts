/**
 * The mapping table both UDP tunnels keep (docs/TUNNELS.md "--udp"): one flow per peer (a real
 * `addr:port` on the forward side, a virtual `ip:port` on the expose side), each holding the socket
 * its replies come back through. Bounded twice, since UDP has no close to tell us a peer is gone:
 * a flow idle for `idleMs` is closed by a sweep, and a new flow beyond `maxFlows` closes the one
 * idle longest. Activity is a field write per datagram, not a Map reshuffle.
 */
import type { DatagramSocket } from '../actors/client/index.ts';
import type { Logger } from '../actors/logger.ts';

/** How long a UDP flow with no datagram either way is kept: about what NAT boxes keep a UDP mapping. */
export const DEFAULT_UDP_FLOW_IDLE_MS = 60_000;
/** Flows at once; one more closes the flow idle longest. */
export const DEFAULT_UDP_MAX_FLOWS = 1024;
/**
 * Kernel buffer asked for on the tunnels' UDP sockets (capped by net.core.rmem_max / wmem_max;
 * Linux doubles what it grants). Linux's default (~208 KiB, about 100 datagrams once the kernel's
 * per-datagram overhead is counted) is 5 ms at 20,000 datagrams a second, and a tunnel process
 * on a busy machine is often not scheduled for longer: the datagrams that came meanwhile were
 * dropped by the kernel (RcvbufErrors), while the process itself was mostly idle. 4 MiB rides
 * out ~100 ms at that rate. It adds no delay when the process keeps up: it only keeps datagrams
 * through a stall that would otherwise be lost, late by at most the stall.
 */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

/** Sets both kernel buffers of a bound UDP socket to UDP_SOCKET_BUFFER_BYTES, where the system allows. */
export function enlargeBuffers(socket: { setRecvBufferSize(n: number): void; setSendBufferSize(n: number): void }): void {
  try {
    socket.setRecvBufferSize(UDP_SOCKET_BUFFER_BYTES);
    socket.setSendBufferSize(UDP_SOCKET_BUFFER_BYTES);
  } catch {
    // A system that refuses keeps its defaults: the tunnel works, with less slack.
  }
}

/** Datagrams kept for a flow whose socket is still being bound; more are dropped. */
export const UDP_FLOW_PENDING_DATAGRAMS = 32;

/** One flow: its key, last activity and how to close what it holds. */
export interface UdpFlow {
  readonly key: string;
  lastActive: number;
  close(): void;
}

/** Counters of a UDP tunnel, for its summary (docs/TUNNELS.md "--udp"). */
export interface UdpTunnelCounts {
  /** Flows open now. */
  flows: number;
  /** Flows since the tunnel started. */
  totalFlows: number;
  /** Flows closed for being idle or to make room. */
  expiredFlows: number;
  /** Datagrams and payload bytes read from the real UDP side and sent into AlphaNET. */
  udpToVirtualDatagrams: number;
  udpToVirtualBytes: number;
  /** Datagrams and payload bytes received from AlphaNET and sent to the real UDP side. */
  virtualToUdpDatagrams: number;
  virtualToUdpBytes: number;
  /** Datagrams dropped by the tunnel (a flow still binding and full, a send refused locally). */
  dropped: number;
}

/**
 * Sends `bytes` into AlphaNET, to `address:port` over `socket`, counted as carried; or as dropped
 * when the socket refuses it or throws (too large for a datagram, or the socket ended: this
 * datagram only, logged at debug level as `notSent`).
 */
export function sendToVirtual(
  socket: DatagramSocket,
  address: string,
  port: number,
  bytes: Buffer,
  counts: UdpTunnelCounts,
  logger: Logger,
  notSent: string,
): void {
  try {
    if (socket.send(address, port, bytes)) {
      counts.udpToVirtualDatagrams++;
      counts.udpToVirtualBytes += bytes.length;
    } else counts.dropped++;
  } catch (cause) {
    counts.dropped++;
    logger.debug({ err: cause }, notSent);
  }
}

/** Flows by key with the two bounds above. */
export class UdpFlowTable<F extends UdpFlow> {
  readonly #flows = new Map<string, F>();
  readonly #idleMs: number;
  readonly #maxFlows: number;
  readonly #timer: NodeJS.Timeout;
  readonly counts: UdpTunnelCounts = {
    flows: 0,
    totalFlows: 0,
    expiredFlows: 0,
    udpToVirtualDatagrams: 0,
    udpToVirtualBytes: 0,
    virtualToUdpDatagrams: 0,
    virtualToUdpBytes: 0,
    dropped: 0,
  };

  constructor(idleMs = DEFAULT_UDP_FLOW_IDLE_MS, maxFlows = DEFAULT_UDP_MAX_FLOWS) {
    this.#idleMs = idleMs;
    this.#maxFlows = Math.max(1, maxFlows);
    this.#timer = setInterval(() => this.#sweep(), Math.max(50, Math.floor(idleMs / 2))).unref();
  }

  get(key: string): F | undefined {
    return this.#flows.get(key);
  }

  /** Adds a flow made by the caller, closing the one idle longest when full. */
  add(flow: F): void {
    if (this.#flows.size >= this.#maxFlows) {
      let oldest: F | undefined;
      for (const f of this.#flows.values()) if (oldest === undefined || f.lastActive < oldest.lastActive) oldest = f;
      if (oldest !== undefined) this.#expire(oldest);
    }
    this.#flows.set(flow.key, flow);
    this.counts.totalFlows++;
    this.counts.flows = this.#flows.size;
  }

  /** Removes a flow that ended by itself (its socket failed). */
  remove(flow: F): void {
    if (this.#flows.get(flow.key) !== flow) return;
    this.#flows.delete(flow.key);
    this.counts.flows = this.#flows.size;
  }

  /** Closes every flow and stops the sweep. */
  closeAll(): void {
    clearInterval(this.#timer);
    for (const flow of this.#flows.values()) flow.close();
    this.#flows.clear();
    this.counts.flows = 0;
  }

  #expire(flow: F): void {
    this.#flows.delete(flow.key);
    this.counts.expiredFlows++;
    this.counts.flows = this.#flows.size;
    flow.close();
  }

  #sweep(): void {
    const before = Date.now() - this.#idleMs;
    for (const flow of [...this.#flows.values()]) if (flow.lastActive < before) this.#expire(flow);
  }
}
