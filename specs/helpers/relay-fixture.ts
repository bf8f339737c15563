/** Starts a relay on 127.0.0.1 port 0 with an in-memory store, torn down with the test. */
import type { Test } from 'tap';
import { startRelay, type Relay, type RelayOptions } from '../../actors/relay/index.ts';
import { openMemoryAddressStore } from '../../storage/index.ts';
import { RawClient, type RawClientOptions } from './raw-client.ts';

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
