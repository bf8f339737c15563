/** Shared set-up for client specs: an in-process relay on loopback and clients from distinct source IPs. */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { normaliseRealIp } from '../../protocol/index.ts';
import type { Test } from 'tap';
import { startRelay } from '../../actors/relay/index.ts';
import type { Relay, RelayOptions } from '../../actors/relay/index.ts';
import { openMemoryAddressStore } from '../../storage/index.ts';
import { connect } from '../../actors/client/index.ts';
import type { Client, ConnectOptions, VirtualConnection } from '../../actors/client/index.ts';
import { within } from '../helpers/wait.ts';

/** `server` listens on `port`, `client` connects to it: [the connecting end, the accepted end]. */
export async function openPair(server: Client, client: Client, port: number): Promise<[VirtualConnection, VirtualConnection]> {
  const listener = await server.listen(port);
  const accepted = listener.accept();
  const outgoing = await client.connect({ address: server.virtualIp, port });
  return [outgoing, await accepted];
}

export async function relayFor(t: Test, options: Partial<RelayOptions> = {}): Promise<Relay> {
  const store = await openMemoryAddressStore({ subnet: '10.0.0.0/16' });
  const relay = await startRelay({ store, host: '127.0.0.1', port: 0, ...options });
  t.teardown(async () => {
    await relay.close();
    await store.close();
  });
  return relay;
}

/** A client from 127.0.0.<n>. */
export async function clientFor(t: Test, relay: { host: string; port: number }, n: number, options: ConnectOptions = {}): Promise<Client> {
  const client = await connect({ host: relay.host, port: relay.port, localAddress: `127.0.0.${n}`, ...options });
  t.teardown(() => client.close());
  return client;
}

/** Deterministic pseudo-random bytes (xorshift32), so both ends can compute the same digest. */
export function pseudoRandom(seed: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(i, x >>> 0);
  }
  for (; i < bytes; i++) out[i] = i & 255;
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads a connection (or any async iterable of chunks) to its end. */
export async function readAll(source: AsyncIterable<Uint8Array>, timeoutMs = 60_000): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  await within(
    'the end of a connection',
    (async () => {
      for await (const chunk of source) {
        chunks.push(chunk);
        total += chunk.length;
      }
    })(),
    timeoutMs,
  ).catch((error: Error) => {
    // The same error (its class and code, which specs assert), saying how far the reading got.
    error.message = `${error.message}; ${total} bytes had arrived`;
    throw error;
  });
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * A TCP proxy in front of the relay that keeps each client's source address (it dials the relay
 * from the same 127.0.0.x), so a spec can cut every connection as a network failure would.
 */
export async function cuttableProxy(t: Test, relay: { host: string; port: number }): Promise<{ host: string; port: number; cut: () => void }> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ host: relay.host, port: relay.port, localAddress: normaliseRealIp(inbound.remoteAddress ?? '') });
    const pair: [net.Socket, net.Socket] = [inbound, outbound];
    pairs.add(pair);
    inbound.pipe(outbound).pipe(inbound);
    const drop = (): void => {
      pairs.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const [a, b] of pairs) (a.destroy(), b.destroy());
    server.close();
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    cut: () => {
      for (const [a, b] of pairs) (a.destroy(), b.destroy());
    },
  };
}
