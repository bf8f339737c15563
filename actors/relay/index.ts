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
export { TLS_MIN_VERSION, certificateFingerprint } from './tls.ts';
export type { RelayTlsOptions } from './tls.ts';
export { WS_PATH, DEFAULT_WS_HOST, WS_MAX_PAYLOAD_SLACK_BYTES, type WebSocketOptions } from './ws-server.ts';
export { BROWSER_BUNDLE_PATH } from './browser-files.ts';
export { trustedProxies, TrustProxyError } from './real-ip.ts';
