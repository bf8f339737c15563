/**
 * What forward() (TCP) and forwardUdp() share: a real local port, the virtual address it is
 * carried to, the client (or the promise of one) that carries it, and how those are checked.
 */
import { parseIpv4 } from '../protocol/index.ts';
import type { Client } from '../actors/client/index.ts';
import { silentLogger } from '../actors/logger.ts';
import type { Logger } from '../actors/logger.ts';
import { TunnelError } from './errors.ts';
import { checkPort } from './shared.ts';

/** Interface forward() and forwardUdp() listen on unless told otherwise: only this machine can use the tunnel. */
export const DEFAULT_FORWARD_LISTEN_HOST = '127.0.0.1';

/** Options of {@link forward} and {@link forwardUdp}. */
export interface ForwardCommonOptions {
  /**
   * A connected client; traffic leaves from its virtual host. May be a promise of one: the
   * port is bound at once, and what arrives before the client is connected waits for it
   * (TCP bytes wait in the kernel; a few datagrams per UDP sender are kept). If the promise
   * rejects, the tunnel closes with that error. A function returning one is called once the
   * port is bound, so that a port clash fails before a relay is ever dialled.
   */
  client: Client | PromiseLike<Client> | (() => PromiseLike<Client>);
  /** The real port to listen on (TCP) or bind (UDP); 0 picks a free one (read it from `port`). */
  localPort: number;
  /** The real interface to listen on. @default DEFAULT_FORWARD_LISTEN_HOST ("127.0.0.1") */
  listenHost?: string;
  /** The virtual address (virtual IP, port) everything is carried to. */
  remote: { address: string; port: number };
  /** One info line per TCP connection opened and closed, a warning per refusal. @default a silent logger */
  logger?: Logger;
  /** Aborting closes the tunnel as close() does. @default none */
  signal?: AbortSignal;
}

/**
 * Checks `options` (throwing ERR_INVALID_ARGUMENT, or the signal's reason if it has aborted)
 * and gives the interface to listen on and the tunnel's logger, named `tunnel` and the remote.
 */
export function forwardSetup(options: ForwardCommonOptions, tunnel: string): { listenHost: string; logger: Logger } {
  const { remote } = options;
  checkPort(options.localPort, 'localPort', 0);
  checkPort(remote.port, 'remote.port');
  if (parseIpv4(remote.address) === undefined) {
    throw new TunnelError('ERR_INVALID_ARGUMENT', `remote.address must be a virtual IPv4 address, got "${remote.address}"`);
  }
  const listenHost = options.listenHost ?? DEFAULT_FORWARD_LISTEN_HOST;
  const logger = (options.logger ?? silentLogger()).child({ tunnel, remote: `${remote.address}:${remote.port}` });
  options.signal?.throwIfAborted();
  return { listenHost, logger };
}

/**
 * The client of `options.client`, called for if it is a function: call it once the port is bound.
 * Its rejection is marked handled here: what waits for the client must not turn the client's
 * failure into an unhandled rejection (the tunnel closes with it).
 */
export function clientOf(client: ForwardCommonOptions['client']): Promise<Client> {
  const ready = new Promise<Client>((resolve) => resolve(typeof client === 'function' ? client() : client));
  ready.catch(() => {});
  return ready;
}
