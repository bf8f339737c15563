/**
 * The relay: `startRelay(options)`. One TCP server (server.ts), one Connection and one
 * relay-connection actor per client connection, one socket-pair actor per virtual socket
 * connection and one status-request actor per forwarded status request, all independent root
 * actors kept in tables (spawnChild under one parent slows sharply past a few thousand
 * children). docs/ARCHITECTURE.md walks the rooms.
 */
import { silentLogger } from '../logger.ts';
import { resolveRelayOptions, type RelayOptions } from './relay-options.ts';
import { RelayServer } from './server.ts';
import type { Relay } from './relay-types.ts';
import { DEFAULT_IDENTITY_MODE, identityModeMismatch } from '../../storage/identity-mode.ts';

export { RECENT_CLOSES_LIMIT, type RecentClose } from './recent-closes.ts';
export { PRE_HELLO_MAX_FRAME_BYTES } from './connection.ts';
export type { RelayCounters } from './counters.ts';
export {
  CLOSE_LINGER_MS,
  DEFAULT_STATUS_LIST_LIMIT,
  STATUS_PORTS_LIMIT,
  type ClientStatus,
  type PairStatus,
  type Relay,
  type RelayStatus,
  type StatusQuery,
} from './relay-types.ts';
export type { PairEnd } from '../../machines/socket-pair.machine.ts';

/**
 * Starts a relay and resolves once it listens.
 * The store stays the caller's: the relay flushes it on close but does not close it.
 */
export async function startRelay(options: RelayOptions): Promise<Relay> {
  const resolved = resolveRelayOptions(options, silentLogger);
  // A store keyed by the other rule would hand out addresses promised under it (§2a).
  const stored = options.store.identityMode ?? DEFAULT_IDENTITY_MODE;
  if (stored !== resolved.identityMode) throw identityModeMismatch('the address store', stored, resolved.identityMode);
  const relay = new RelayServer(resolved, { tls: options.tls, plaintextPort: options.plaintextPort });
  await relay.listen();
  return relay;
}
