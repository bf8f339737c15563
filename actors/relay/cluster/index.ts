/** Relays sharing one address space over NATS (issue 13, docs/CLUSTER.md). */
export { checkRelayId, defaultRelayId, joinCluster, DEFAULT_PRESENCE_BUCKET, type Cluster, type ClusterOptions } from './cluster.ts';
export { ClusterPresence, DEFAULT_PRESENCE_HEARTBEAT_MS, DEFAULT_PRESENCE_TTL_MS, presenceKey, type PresenceOptions } from './presence.ts';
