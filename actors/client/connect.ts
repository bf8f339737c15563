/** `connect()` in Node: the Client on the Node platform (node-platform.ts). */
import { Client, type ConnectOptions } from './client.ts';
import { NODE_PLATFORM } from './node-platform.ts';

/**
 * Connects to a relay and resolves once the client knows its virtual IP. Rejects with
 * ERR_RELAY_UNREACHABLE (or ERR_RELAY_REJECTED when the relay refuses the client).
 * `relay: 'host:port'` dials TCP; `url: 'ws://host:port/alphanet'` dials the relay's WebSocket.
 *
 * @example
 * ```ts
 * import { connect } from 'alphanet';
 * const client = await connect({ relay: '127.0.0.1:1337', localAddress: '127.0.0.2' });
 * console.log(client.virtualIp);
 * client.actor.subscribe((s) => console.log(s.value));
 * await client.close();
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const identity = await NODE_PLATFORM.identity?.load(options.identity, options.logger);
  return new Client(options, NODE_PLATFORM, identity).start(options.signal);
}
