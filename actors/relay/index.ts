/** The AlphaNET relay: `startRelay(options)` and its types. */
export { startRelay, RECENT_CLOSES_LIMIT, CLOSE_LINGER_MS } from './relay.actor.ts';
export type {
  Relay,
  RelayStatus,
  RelayCounters,
  ClientStatus,
  PairStatus,
  RecentClose,
} from './relay.actor.ts';
export * from './relay-options.ts';
export type * from './relay-events.ts';
export { DEFAULT_IDENTITY_MODE, IDENTITY_MODES, KEY_ENTRY_PREFIX, keyEntry, type IdentityMode } from './identity.ts';
