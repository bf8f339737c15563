/**
 * exposeUdp(): a real UDP service served at a virtual datagram port (docs/TUNNELS.md "--udp").
 * Each virtual peer (`ip:port`, as the relay stamped it) gets a flow: a real UDP socket of its
 * own towards the target, so the target's replies on that socket go back to that peer. Flows
 * are bounded and expire when idle (udp-flows.ts).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Client, DatagramSocket } from '../actors/client/index.ts';
import { silentLogger } from '../actors/logger.ts';
import type { Logger } from '../actors/logger.ts';
import { closeOnce } from './close-once.ts';
import { checkPort, closeWhen } from './shared.ts';
import { UdpFlowTable, enlargeBuffers, sendToVirtual, type UdpFlow } from './udp-flows.ts';
import { udpTunnelHandle, type UdpTunnel } from './udp-forward.ts';

/** Options of {@link exposeUdp}. */
export interface UdpExposeOptions {
  /** A connected client; the datagram port is bound on its virtual host. */
  client: Client;
  /** The virtual datagram port to serve. */
  port: number;
  /** The real UDP service every peer's datagrams go to. */
  target: { host: string; port: number };
  /** Virtual IPs whose datagrams are carried; others are dropped and counted. @default everyone */
  allow?: readonly string[];
  /** @default a silent logger */
  logger?: Logger;
  /** Aborting closes the tunnel. @default none */
  signal?: AbortSignal;
  /** A flow with no datagram either way for this long is closed. @default DEFAULT_UDP_FLOW_IDLE_MS (60 s) */
  idleMs?: number;
  /** Flows at once; one more closes the one idle longest. @default DEFAULT_UDP_MAX_FLOWS (1024) */
  maxFlows?: number;
}

interface ExposeFlow extends UdpFlow {
  udp: dgram.Socket;
}

/** A running exposeUdp() tunnel; `address` is "virtualIp:port". */
export interface UdpExposeTunnel extends UdpTunnel {
  readonly address: string;
}

/**
 * Binds virtual datagram port `port` and carries every datagram to `target`, each virtual peer
 * through its own real UDP socket so replies find their way back. Resolves once bound.
 */
export async function exposeUdp(options: UdpExposeOptions): Promise<UdpExposeTunnel> {
  const { client, target } = options;
  checkPort(options.port, 'port');
  checkPort(target.port, 'target.port');
  const logger = (options.logger ?? silentLogger()).child({ tunnel: 'expose-udp', target: `${target.host}:${target.port}` });
  const socket: DatagramSocket = await client.datagram(options.port, { signal: options.signal });
  const flows = new UdpFlowTable<ExposeFlow>(options.idleMs, options.maxFlows);
  const counts = flows.counts;
  const family = net.isIPv6(target.host) ? 'udp6' : 'udp4';

  const openFlow = (key: string, address: string, peerPort: number): ExposeFlow => {
    const udp = dgram.createSocket(family);
    // Bound now (not on its first send) so its buffers can be set.
    udp.bind(0);
    udp.once('listening', () => enlargeBuffers(udp));
    const flow: ExposeFlow = { key, lastActive: Date.now(), udp, close: () => udp.close() };
    udp.on('message', (bytes, rinfo) => {
      // Only the target answers for this peer.
      if (rinfo.port !== target.port) return;
      flow.lastActive = Date.now();
      sendToVirtual(socket, address, peerPort, bytes, counts, logger, 'reply not sent');
    });
    udp.on('error', (cause) => {
      logger.warn({ peer: key, err: cause }, 'udp flow failed');
      flows.remove(flow);
      udp.close();
    });
    flows.add(flow);
    logger.debug({ peer: key }, 'udp flow opened');
    return flow;
  };

  let error: Error | undefined;
  const closer = closeOnce(async () => {
    unhook();
    socket.close();
    flows.closeAll();
    logger.info({ ...counts, ...(error ? { reason: error.message } : {}) }, 'tunnel closed');
  });
  const { close } = closer;
  const unhook = closeWhen(client, options.signal, close, (lost) => (error ??= lost));

  void (async () => {
    try {
      const allow = options.allow === undefined ? undefined : new Set(options.allow);
      for await (const message of socket) {
        if (allow !== undefined && !allow.has(message.address)) {
          counts.dropped++;
          continue;
        }
        const key = `${message.address}:${message.port}`;
        const flow = flows.get(key) ?? openFlow(key, message.address, message.port);
        flow.lastActive = Date.now();
        counts.virtualToUdpDatagrams++;
        counts.virtualToUdpBytes += message.bytes.length;
        flow.udp.send(message.bytes, target.port, target.host);
      }
    } catch (cause) {
      error ??= cause as Error;
    }
    void close();
  })();

  const address = `${client.virtualIp}:${socket.port}`;
  logger.info({ address }, 'udp tunnel bound');
  return udpTunnelHandle(socket.port, counts, closer, () => error, { address });
}
