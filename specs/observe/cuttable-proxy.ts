/**
 * A TCP proxy on loopback in front of the relay's HTTP side, which a spec can cut and restore:
 * what a browser sees when the relay's HTTP server goes away and comes back, without stopping
 * the relay or re-binding a port.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { Test } from 'tap';
import { within } from './wait.ts';

export interface CuttableProxy {
  /** `http://127.0.0.1:<port>`: open the page here. */
  readonly url: string;
  /** Ends every connection through the proxy and refuses new ones until {@link restore}. */
  cut(): void;
  /** Forwards new connections again. */
  restore(): void;
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free port, closed in the test's teardown. */
export async function cuttableProxy(t: Test, targetPort: number): Promise<CuttableProxy> {
  const live = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((inbound) => {
    inbound.on('error', () => {});
    if (down) {
      inbound.destroy();
      return;
    }
    const outbound = net.connect({ host: '127.0.0.1', port: targetPort });
    outbound.on('error', () => inbound.destroy());
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    live.add(inbound).add(outbound);
    inbound.once('close', () => live.delete(inbound));
    outbound.once('close', () => live.delete(outbound));
    inbound.pipe(outbound).pipe(inbound);
  });
  server.listen(0, '127.0.0.1');
  await within('the proxy listens', once(server, 'listening'));
  t.teardown(async () => {
    for (const socket of live) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      down = true;
      for (const socket of live) socket.destroy();
    },
    restore: () => {
      down = false;
    },
  };
}
