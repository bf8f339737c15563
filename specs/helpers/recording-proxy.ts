/**
 * A loopback TCP proxy between one client and the relay that records every byte of both
 * directions, as a packet capture of that link would (issue 12's "raw capture" spec). It connects
 * to the relay from the client's own source address, so the client keeps its virtual IP.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { Test } from 'tap';

export interface RecordingProxy {
  port: number;
  /** Everything the client sent towards the relay. */
  toRelay(): Buffer;
  /** Everything the relay sent towards the client. */
  fromRelay(): Buffer;
}

export async function recordingProxy(t: Test, relayPort: number): Promise<RecordingProxy> {
  const up: Buffer[] = [];
  const down: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: '127.0.0.1', port: relayPort, localAddress: inbound.remoteAddress });
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => {});
    }
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.on('data', (chunk: Buffer) => up.push(Buffer.from(chunk)));
    outbound.on('data', (chunk: Buffer) => down.push(Buffer.from(chunk)));
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, toRelay: () => Buffer.concat(up), fromRelay: () => Buffer.concat(down) };
}
