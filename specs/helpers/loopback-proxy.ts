/**
 * The plumbing of the specs' loopback TCP proxies (recording, tampering, NATS tap): a listener on
 * 127.0.0.1 whose every connection is paired with one to `targetPort`, each end closing the
 * other, all of them destroyed and the listener closed when the spec ends. What crosses is the
 * caller's: `wire` is given both sockets and moves (or changes) the bytes itself.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { Test } from 'tap';

export interface LoopbackProxyOptions {
  /** Connect to the target from the inbound peer's own address (so a relay sees the client's real IP). */
  fromPeerAddress?: boolean;
}

/** Resolves with the port it listens on. */
export async function loopbackProxy(
  t: Test,
  targetPort: number,
  wire: (inbound: net.Socket, outbound: net.Socket) => void,
  options: LoopbackProxyOptions = {},
): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port: targetPort, ...(options.fromPeerAddress ? { localAddress: inbound.remoteAddress } : {}) });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => sockets.delete(socket));
    }
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    wire(inbound, outbound);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}
