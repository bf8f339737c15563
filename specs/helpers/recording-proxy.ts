/**
 * A loopback TCP proxy between one client and the relay that records every byte of both
 * directions, as a packet capture of that link would (issue 12's "raw capture" spec). It connects
 * to the relay from the client's own source address, so the client keeps its virtual IP.
 */
import type { Test } from 'tap';
import { loopbackProxy } from './loopback-proxy.ts';

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
  const port = await loopbackProxy(
    t,
    relayPort,
    (inbound, outbound) => {
      inbound.on('data', (chunk: Buffer) => up.push(Buffer.from(chunk)));
      outbound.on('data', (chunk: Buffer) => down.push(Buffer.from(chunk)));
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    },
    { fromPeerAddress: true },
  );
  return { port, toRelay: () => Buffer.concat(up), fromRelay: () => Buffer.concat(down) };
}
