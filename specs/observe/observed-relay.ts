/** A relay with observation attached (HTTP on 127.0.0.1 port 0), and a helper that opens a pair. */
import type { Test } from 'tap';
import { ConnectionStatus, PacketType, SocketStatus, encodeArbitraryData } from '../../protocol/index.ts';
import { startRelay, type Relay } from '../../actors/relay/index.ts';
import { openMemoryAddressStore } from '../../storage/index.ts';
import { createRelayObservation, type AttachOptions, type InspectFn, type RelayObservation } from '../../observe/index.ts';
import type { ObserveServer } from '../../observe/observe-server.ts';
import { RawClient, nextId } from '../helpers/raw-client.ts';

export interface ObservedRelay {
  relay: Relay;
  observation: RelayObservation;
  http: ObserveServer;
  /** Ids of every machine the relay has started an actor of. */
  ranMachines: ReadonlySet<string>;
  open(localAddress: string): Promise<Awaited<ReturnType<typeof RawClient.open>>>;
}

export async function observedRelay(t: Test, options: { inspectUrl?: string } & AttachOptions = {}): Promise<ObservedRelay> {
  const observation = createRelayObservation({ inspectUrl: options.inspectUrl });
  const store = await openMemoryAddressStore({ onWrite: observation.onStoreWrite });
  const ranMachines = new Set<string>();
  const inspect: InspectFn = (event) => {
    const id = (event.actorRef as { logic?: { id?: unknown } }).logic?.id;
    if (event.type === '@xstate.actor' && typeof id === 'string') ranMachines.add(id);
    observation.inspect(event);
  };
  const relay = await startRelay({ host: '127.0.0.1', port: 0, store, inspect });
  const http = (await observation.attach(relay, { port: 0, ...options })) as ObserveServer;
  const clients: RawClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.socket.destroy();
    await observation.close();
    await relay.close();
    await store.close();
  });
  return {
    relay,
    observation,
    http,
    ranMachines,
    open: async (localAddress) => {
      const result = await RawClient.open({ port: relay.port, localAddress });
      clients.push(result.client);
      return result;
    },
  };
}

/** Opens a socket connection from `a` to `b` (b listens on `port`) and returns its connection id. */
export async function openPair(
  a: { client: RawClient; virtualIp: { ip: number } },
  b: { client: RawClient; virtualIp: { ip: number } },
  port: number,
): Promise<{ connectionId: number; sourcePort: number }> {
  await b.client.bind(port);
  const bindA = await a.client.bind(0);
  const id1 = nextId();
  const source = { ip: a.virtualIp.ip, port: bindA.port };
  const destination = { ip: b.virtualIp.ip, port };
  a.client.send({ type: PacketType.SocketStatusRequest, requestId: id1, source, destination });
  const fwd = await b.client.next(PacketType.SocketStatusRequest);
  b.client.send({ type: PacketType.SocketStatusResponse, requestId: fwd.requestId, status: SocketStatus.Listening });
  await a.client.next(PacketType.SocketStatusResponse);
  a.client.send({ type: PacketType.SocketConnectionRequest, requestId: nextId(), connectionId: 0, source, destination });
  const req = await b.client.next(PacketType.SocketConnectionRequest);
  b.client.send({ type: PacketType.SocketConnectionResponse, requestId: req.requestId, connectionId: req.connectionId, status: ConnectionStatus.Accepted });
  await a.client.next(PacketType.SocketConnectionResponse);
  return { connectionId: req.connectionId, sourcePort: bindA.port };
}

/** Sends `text` from `from` and waits until `to` reads it. */
export async function relayText(from: RawClient, to: RawClient, connectionId: number, text: string): Promise<string> {
  from.send(encodeArbitraryData(connectionId, new TextEncoder().encode(text)));
  const got = await to.next(PacketType.ArbitraryData);
  return new TextDecoder().decode(got.data);
}
