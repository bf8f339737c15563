/**
 * A relay's membership of a cluster (issue 13, docs/CLUSTER.md): one NATS connection, the address
 * map in JetStream KV (storage/nats-kv-store.ts) and presence (presence.ts). Without `--cluster`
 * none of this runs and the relay keeps its lowdb store.
 */
import { hostname } from 'node:os';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { NatsAddressStore, openBucket, type IdentityMode } from '../../../storage/index.ts';
import type { Logger } from '../../logger.ts';
import type { Relay } from '../relay-types.ts';
import { ClusterPresence, DEFAULT_PRESENCE_HEARTBEAT_MS, DEFAULT_PRESENCE_TTL_MS } from './presence.ts';
import { ClusterRouting } from './routing.ts';

/** The bucket of presence keys. */
export const DEFAULT_PRESENCE_BUCKET = 'alphanet-presence';
/** A relay id is a NATS subject token: letters, digits, `-` and `_`. */
const RELAY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface ClusterOptions {
  /** NATS server URL(s), comma-separated: `nats://127.0.0.1:4222`. */
  url: string;
  /** @default defaultRelayId() */
  relayId?: string;
  subnet: string;
  ipv6PrefixCap?: number;
  ipv6PrefixLength?: number;
  logger: Logger;
  /** What the address map is keyed by; the bucket records it and refuses the other. @default 'ip' */
  identityMode?: IdentityMode;
  /** @default 'alphanet-addresses' */
  addressBucket?: string;
  /** @default 'alphanet-presence' */
  presenceBucket?: string;
  /** @default DEFAULT_PRESENCE_TTL_MS (15 s) */
  presenceTtlMs?: number;
  /** @default DEFAULT_PRESENCE_HEARTBEAT_MS (5 s) */
  presenceHeartbeatMs?: number;
  /** A stand-in with no pair and no request under way this long is closed. @default DEFAULT_STAND_IN_IDLE_MS (60 s) */
  standInIdleMs?: number;
  /** The clock stand-in idleness is measured with, in ms. @default performance.now */
  now?: () => number;
}

/** `<host name>-<pid>` as a subject token: unique on a machine, readable in `nats kv get`. */
export function defaultRelayId(): string {
  return `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64);
}

/** A relay id as the cluster's subjects and keys take it. @throws RangeError naming the rule */
export function checkRelayId(relayId: string): string {
  if (!RELAY_ID.test(relayId)) throw new RangeError(`--relay-id ${JSON.stringify(relayId)}: use 1–64 letters, digits, '-' or '_'`);
  return relayId;
}

export interface Cluster {
  readonly relayId: string;
  readonly connection: NatsConnection;
  readonly store: NatsAddressStore;
  readonly presence: ClusterPresence;
  /** Give it to startRelay as `remote`: it routes requests for hosts on other relays. */
  readonly routing: ClusterRouting;
  /** Starts following the relay's clients for presence. */
  attach(relay: Relay): void;
  /** Stops presence (deleting this relay's keys), closes the store and the NATS connection. */
  close(): Promise<void>;
}

/** Connects to NATS, opens the address map and starts presence. */
export async function joinCluster(options: ClusterOptions): Promise<Cluster> {
  const relayId = checkRelayId(options.relayId ?? defaultRelayId());
  const { logger } = options;
  let connection: NatsConnection;
  try {
    connection = await connect({
      servers: options.url.split(',').map((s) => s.trim()),
      name: `alphanet-relay-${relayId}`,
      // Once joined, a relay keeps trying: its clients stay connected while NATS is away (docs/CLUSTER.md).
      maxReconnectAttempts: -1,
      // Without this, every request (a KV create, a presence put: one per new client) builds two
      // Error objects with stack traces up front in case it fails: 8% of a relay's CPU under a
      // burst of new clients. Our own errors name the operation that failed.
      noAsyncTraces: true,
      // nats.js writes what was published at the end of the turn, or at once when more than its
      // threshold (32 KiB) waits: a cross-relay link publishes a turn's worth of 16 KiB messages
      // in one go (nats-link.ts), which would leave in a socket write per two messages. With 4 MiB
      // they leave in one (measured: the sending relay's CPU per MiB across relays 2383/2383 →
      // 2109/2188). A connection option nats.js reads but does not declare.
      pendingLimit: 4 * 1024 * 1024,
    } as ConnectionOptions);
  } catch (error) {
    throw new Error(`cannot reach the cluster's NATS server at ${options.url} (--cluster): ${(error as Error).message}`, { cause: error });
  }
  void (async () => {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect') logger.warn({ server: status.server }, 'lost the cluster (NATS); reconnecting');
      else if (status.type === 'reconnect') logger.info({ server: status.server }, 'reconnected to the cluster (NATS)');
    }
  })().catch(() => {});
  try {
    const store = await NatsAddressStore.open({
      connection,
      relayId,
      subnet: options.subnet,
      bucket: options.addressBucket,
      ipv6PrefixCap: options.ipv6PrefixCap,
      ipv6PrefixLength: options.ipv6PrefixLength,
      identityMode: options.identityMode,
    });
    const ttlMs = options.presenceTtlMs ?? DEFAULT_PRESENCE_TTL_MS;
    const presenceBucket = options.presenceBucket ?? DEFAULT_PRESENCE_BUCKET;
    const kv = await openBucket(connection, presenceBucket, { history: 1, ttl: ttlMs });
    const presence = new ClusterPresence({ kv, connection, bucket: presenceBucket, relayId, logger, ttlMs, heartbeatMs: options.presenceHeartbeatMs ?? DEFAULT_PRESENCE_HEARTBEAT_MS });
    await presence.start();
    const routing = new ClusterRouting(connection, relayId, presence, store, logger, { standInIdleMs: options.standInIdleMs, now: options.now });
    let closing: Promise<void> | undefined;
    return {
      relayId,
      connection,
      store,
      presence,
      routing,
      attach: (relay) => {
        presence.attach(relay, (clientId) => routing.ghostIds.has(clientId));
        routing.attach(relay);
      },
      close: () =>
        (closing ??= (async () => {
          try {
            await routing.close();
            await presence.stop();
            await store.close();
          } finally {
            await connection.drain().catch(() => connection.close());
          }
        })()),
    };
  } catch (error) {
    await connection.close();
    throw error;
  }
}
