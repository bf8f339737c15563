/** Starts a relay on 127.0.0.1 port 0 with an in-memory store, torn down with the test. */
import type { Test } from 'tap';
import { startRelay, type Relay, type RelayBus, type RelayBusEvents, type RelayOptions } from '../../actors/relay/index.ts';
import { openMemoryAddressStore } from '../../storage/index.ts';
import { ConnectionStatus, PacketType } from '../../protocol/index.ts';
import { RawClient, nextId, type RawClientOptions } from './raw-client.ts';

export async function relayFixture(
  t: Test,
  options: Partial<RelayOptions> = {},
): Promise<{ relay: Relay; open: (localAddress: string, extra?: Partial<RawClientOptions>) => Promise<Awaited<ReturnType<typeof RawClient.open>>> ; connect: (localAddress: string) => Promise<RawClient> }> {
  const store = options.store ?? (await openMemoryAddressStore());
  const relay = await startRelay({ host: '127.0.0.1', port: 0, ...options, store });
  const clients: RawClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.socket.destroy();
    await relay.close();
    if (options.store === undefined) await store.close();
  });
  return {
    relay,
    open: async (localAddress, extra = {}) => {
      const result = await RawClient.open({ port: relay.port, localAddress, ...extra });
      clients.push(result.client);
      return result;
    },
    connect: async (localAddress) => {
      const client = await RawClient.connect({ port: relay.port, localAddress });
      clients.push(client);
      return client;
    },
  };
}

/** Opens a socket pair A(port 0) → B(port `port`) through the whole handshake; returns the connection id. */
export async function pairUp(
  a: RawClient,
  aIp: number,
  b: RawClient,
  bIp: number,
  port: number,
  bindTarget = true,
): Promise<{ connectionId: number; aPort: number }> {
  if (bindTarget) {
    const bound = await b.bind(port);
    if (bound.status !== 0) throw new Error(`bind ${port} failed: ${bound.status}`);
  }
  const { port: aPort } = await a.bind(0);
  const requestId = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: aIp, port: aPort }, destination: { ip: bIp, port } });
  const request = await b.next(PacketType.SocketConnectionRequest);
  b.send({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted });
  const response = await a.next(PacketType.SocketConnectionResponse);
  if (response.status !== ConnectionStatus.Accepted || response.requestId !== requestId) throw new Error('handshake failed');
  return { connectionId: response.connectionId, aPort };
}

/** How long a spec waits for a bus event before failing with the event's name. */
export const NEXT_EVENT_TIMEOUT_MS = 15_000;

/**
 * The next `name` event of a relay's bus (node's events.once does not take eventemitter3).
 * Rejects after `timeoutMs` naming the event, so a missing event fails the spec instead of
 * hanging it until tap's own timeout.
 */
export function nextEvent<K extends keyof RelayBusEvents>(
  bus: RelayBus,
  name: K,
  timeoutMs = NEXT_EVENT_TIMEOUT_MS,
): Promise<RelayBusEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const listener = (arg: RelayBusEvents[K][0]) => {
      clearTimeout(timer);
      resolve(arg);
    };
    const timer = setTimeout(() => {
      (bus.off as (event: K, listener: (arg: RelayBusEvents[K][0]) => void) => RelayBus)(name, listener);
      reject(new Error(`no ${String(name)} event on the relay's bus within ${timeoutMs} ms`));
    }, timeoutMs);
    (bus.once as (event: K, listener: (arg: RelayBusEvents[K][0]) => void) => RelayBus)(name, listener);
  });
}
