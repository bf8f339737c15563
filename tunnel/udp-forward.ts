/**
 * forwardUdp(): a real local UDP port carried to a virtual datagram address (docs/TUNNELS.md
 * "--udp"). Each local sender (`addr:port`) gets a flow: a datagram socket on an ephemeral
 * virtual port of its own, so the replies the far end sends to that port come back to that
 * sender. Flows are bounded and expire when idle (udp-flows.ts). Datagrams are never queued
 * beyond a few while a flow's port is being bound: a late game packet is worthless.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { Client, DatagramSocket } from '../actors/client/index.ts';
import { TunnelError } from './errors.ts';
import { clientOf, forwardSetup, type ForwardCommonOptions } from './forward-options.ts';
import { closeOnce, type CloseOnce } from './close-once.ts';
import { closeWhen } from './shared.ts';
import { UDP_FLOW_PENDING_DATAGRAMS, UdpFlowTable, enlargeBuffers, sendToVirtual, type UdpFlow, type UdpTunnelCounts } from './udp-flows.ts';
import type { TunnelStats } from './ledger.ts';

/** Options of {@link forwardUdp}: those it shares with forward() (`remote.port` a datagram port), and the flow limits. */
export interface UdpForwardOptions extends ForwardCommonOptions {
  /** A flow with no datagram either way for this long is closed. @default DEFAULT_UDP_FLOW_IDLE_MS (60 s) */
  idleMs?: number;
  /** Flows at once; one more closes the one idle longest. @default DEFAULT_UDP_MAX_FLOWS (1024) */
  maxFlows?: number;
}

/** A running UDP tunnel (either side). */
export interface UdpTunnel {
  /** The port served: the real UDP port for forward, the virtual datagram port for expose. */
  readonly port: number;
  /** The counts, with the flow counts also under the TCP tunnels' names (active, total). */
  stats(): TunnelStats & UdpTunnelCounts;
  close(): Promise<void>;
  /** UDP has nothing to finish: closes at once (the grace period is for TCP tunnels). */
  shutdown(graceMs: number): Promise<void>;
  readonly closed: Promise<void>;
  readonly error: Error | undefined;
}

interface ForwardFlow extends UdpFlow {
  socket: DatagramSocket | undefined;
  /** Datagrams from the sender while the socket is being bound. */
  pending: Buffer[] | undefined;
}

/** The counts of a flow table as a UdpTunnel reports them. */
export function udpStats(counts: UdpTunnelCounts): TunnelStats & UdpTunnelCounts {
  return {
    ...counts,
    active: counts.flows,
    total: counts.totalFlows,
    refused: 0,
    tcpToVirtualBytes: counts.udpToVirtualBytes,
    virtualToTcpBytes: counts.virtualToUdpBytes,
  };
}

/**
 * The handle both UDP tunnels return, made in one place (as listenerHandle() for the TCP ones):
 * counts read live, and a shutdown that is close(). `extra` fields are added as they are.
 */
export function udpTunnelHandle<T extends object>(
  port: number,
  counts: UdpTunnelCounts,
  closer: CloseOnce,
  error: () => Error | undefined,
  extra: T,
): UdpTunnel & T {
  return {
    ...extra,
    port,
    stats: () => udpStats(counts),
    close: closer.close,
    shutdown: () => closer.close(),
    closed: closer.closed,
    get error() {
      return error();
    },
  };
}

/**
 * Binds `listenHost:localPort` (UDP) and carries every datagram to `remote`, each sender through
 * its own virtual datagram port so replies find their way back. Resolves once bound; rejects
 * with ERR_LISTEN_FAILED (e.g. port in use).
 */
export async function forwardUdp(options: UdpForwardOptions): Promise<UdpTunnel> {
  const { remote } = options;
  const { listenHost, logger } = forwardSetup(options, 'forward-udp');
  const udp = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4' });
  try {
    udp.bind(options.localPort, listenHost);
    await once(udp, 'listening');
  } catch (cause) {
    udp.close();
    throw new TunnelError('ERR_LISTEN_FAILED', `cannot bind UDP ${listenHost}:${options.localPort}: ${(cause as Error).message}`, { cause });
  }
  enlargeBuffers(udp);
  const port = udp.address().port;
  const flows = new UdpFlowTable<ForwardFlow>(options.idleMs, options.maxFlows);
  const counts = flows.counts;
  const clientReady = clientOf(options.client);
  let current: Client | undefined;

  const send = (flow: ForwardFlow, bytes: Buffer): void =>
    sendToVirtual(flow.socket!, remote.address, remote.port, bytes, counts, logger, 'datagram not sent');

  const openFlow = (key: string, address: string, senderPort: number, first: Buffer): void => {
    const flow: ForwardFlow = {
      key,
      lastActive: Date.now(),
      socket: undefined,
      pending: [first],
      close: () => {
        flow.pending = undefined;
        flow.socket?.close();
      },
    };
    flows.add(flow);
    logger.debug({ from: key }, 'udp flow opened');
    const bound = current !== undefined ? current.datagram(0) : clientReady.then((c) => c.datagram(0));
    bound.then(
      async (socket) => {
        if (flow.pending === undefined || closer.isClosing) {
          socket.close();
          return;
        }
        flow.socket = socket;
        for (const bytes of flow.pending) send(flow, bytes);
        flow.pending = undefined;
        // Replies: only from the remote address, to the sender this flow belongs to.
        for await (const message of socket) {
          if (closer.isClosing) break;
          if (message.address !== remote.address || message.port !== remote.port) continue;
          flow.lastActive = Date.now();
          counts.virtualToUdpDatagrams++;
          counts.virtualToUdpBytes += message.bytes.length;
          udp.send(message.bytes, senderPort, address);
        }
        flows.remove(flow);
      },
      (cause: unknown) => {
        counts.dropped += flow.pending?.length ?? 0;
        flow.pending = undefined;
        flows.remove(flow);
        logger.warn({ from: key, err: cause }, 'udp flow failed: no virtual datagram port');
      },
    );
  };

  udp.on('message', (bytes, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    const flow = flows.get(key);
    if (flow === undefined) return openFlow(key, rinfo.address, rinfo.port, bytes);
    flow.lastActive = Date.now();
    if (flow.socket !== undefined) return send(flow, bytes);
    if (flow.pending !== undefined && flow.pending.length < UDP_FLOW_PENDING_DATAGRAMS) flow.pending.push(bytes);
    else counts.dropped++;
  });
  udp.on('error', (cause) => logger.warn({ err: cause }, 'UDP socket error'));

  let error: Error | undefined;
  let unhookClient = (): void => {};
  const closer = closeOnce(async () => {
    options.signal?.removeEventListener('abort', signalOnAbort);
    unhookClient();
    flows.closeAll();
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    logger.info({ ...counts, ...(error ? { reason: error.message } : {}) }, 'tunnel closed');
  });
  const { close } = closer;
  const signalOnAbort = (): void => void close();
  options.signal?.addEventListener('abort', signalOnAbort, { once: true });
  if (options.signal?.aborted) void close();
  clientReady.then(
    (c) => {
      current = c;
      if (!closer.isClosing) unhookClient = closeWhen(c, undefined, close, (lost) => (error ??= lost));
    },
    (cause: unknown) => {
      error ??= cause instanceof Error ? cause : new Error(String(cause));
      void close();
    },
  );
  logger.info({ listen: `${listenHost}:${port}` }, 'udp tunnel bound');
  return udpTunnelHandle(port, counts, closer, () => error, {});
}
