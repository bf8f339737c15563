/**
 * Presence: which relay of the cluster holds which virtual host (docs/CLUSTER.md). Each relay
 * writes `host.<virtual IP>` → its relay id into a KV bucket whose values expire after
 * `ttlMs` (the bucket's max age), when its first connection of that host arrives, deletes it at
 * the first heartbeat after the last one left, and rewrites every key it holds each `heartbeatMs`; a relay that dies stops
 * rewriting, so its hosts vanish within `ttlMs` and its clients, reconnecting elsewhere, are
 * written by their new relay.
 *
 * Plain puts and deletes suffice here (no compare-and-set, so nats-server #4320 does not apply):
 * presence is a hint for routing, and a relay asked for a host it no longer holds answers Offline.
 *
 * Every relay watches the bucket into a local cache, so `holder()` is a map lookup. Expiry by
 * max age leaves no delete marker in nats-server 2.9, so the cache expires an entry itself,
 * `ttlMs` after the last write of it reached this relay.
 */
import type { KV } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/transport-node';
import type { KvWatchEntry } from '@nats-io/kv';
import { formatIpv4, parseIpv4 } from '../../../protocol/address.ts';
import { KvWriter } from '../../../storage/index.ts';
import type { Logger } from '../../logger.ts';
import type { Relay } from '../relay-types.ts';
import type { ClientConnectedEvent, ClientDisconnectedEvent } from '../relay-events.ts';

/** A dead relay's hosts are routed to nobody after this long. */
export const DEFAULT_PRESENCE_TTL_MS = 15_000;
/** A third of the TTL: two missed heartbeats (a GC pause, a slow NATS) do not expire a live host. */
export const DEFAULT_PRESENCE_HEARTBEAT_MS = 5_000;

export interface PresenceOptions {
  /** The presence bucket, for the watch. */
  kv: KV;
  /** The connection writes go out on (pipelined: storage/nats-writer.ts). */
  connection: NatsConnection;
  /** The presence bucket's name. */
  bucket: string;
  relayId: string;
  logger: Logger;
  /** @default DEFAULT_PRESENCE_TTL_MS (15 s) */
  ttlMs?: number;
  /** @default DEFAULT_PRESENCE_HEARTBEAT_MS (5 s) */
  heartbeatMs?: number;
  /** Local time in ms, for the cache's expiry. @default performance.now */
  now?: () => number;
}

interface Seen {
  relay: string;
  at: number;
}

export const presenceKey = (virtualIp: number): string => `host.${formatIpv4(virtualIp)}`;

export class ClusterPresence {
  readonly relayId: string;
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #writer: KvWriter;
  readonly #logger: Logger;
  readonly #ttlMs: number;
  readonly #heartbeatMs: number;
  readonly #now: () => number;
  /** Virtual hosts with live connections here → how many. */
  readonly #held = new Map<number, number>();
  /**
   * Hosts whose last connection left since the last heartbeat: deleted at the next one, so a
   * client that reconnects at once (or a burst of short connections) costs no writes.
   */
  readonly #leaving = new Set<number>();
  /** Every relay's hosts as the watch told. */
  readonly #seen = new Map<number, Seen>();
  #watch: QueuedIterator<KvWatchEntry> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #detach: (() => void) | undefined;
  #failing = false;

  constructor(options: PresenceOptions) {
    this.#kv = options.kv;
    this.#bucket = options.bucket;
    this.#writer = new KvWriter(options.connection);
    this.relayId = options.relayId;
    this.#logger = options.logger;
    this.#ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_PRESENCE_HEARTBEAT_MS;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Starts the watch; resolves once it runs. */
  async start(): Promise<void> {
    const watch = await this.#kv.watch();
    this.#watch = watch;
    void (async () => {
      for await (const entry of watch) {
        const virtualIp = entry.key.startsWith('host.') ? parseIpv4(entry.key.slice(5)) : undefined;
        if (virtualIp === undefined) continue;
        if (entry.operation === 'PUT') this.#seen.set(virtualIp, { relay: entry.string(), at: this.#now() });
        else {
          this.#seen.delete(virtualIp);
          // A relay the host left deleted it after the host had come here: write it back at once.
          if (this.#held.has(virtualIp)) this.#put(virtualIp);
        }
      }
    })().catch((error: unknown) => this.#logger.warn({ err: error }, 'the presence watch ended'));
    this.#timer = setInterval(() => this.#heartbeat(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /** Follows the relay's clients: a host is present here while one of its connections is (stand-ins excepted). */
  attach(relay: Relay, isStandIn: (clientId: number) => boolean = () => false): void {
    const connected = (event: ClientConnectedEvent) => {
      if (isStandIn(event.id)) return;
      const virtualIp = parseIpv4(event.virtualIp);
      if (virtualIp === undefined) return;
      const count = this.#held.get(virtualIp) ?? 0;
      this.#held.set(virtualIp, count + 1);
      // A host back before its key was deleted (a reconnect) costs no write.
      if (count === 0 && !this.#leaving.delete(virtualIp)) this.#put(virtualIp);
    };
    const disconnected = (event: ClientDisconnectedEvent) => {
      if (isStandIn(event.id)) return;
      const virtualIp = event.virtualIp === undefined ? undefined : parseIpv4(event.virtualIp);
      if (virtualIp === undefined) return;
      const count = this.#held.get(virtualIp);
      if (count === undefined) return;
      if (count > 1) {
        this.#held.set(virtualIp, count - 1);
        return;
      }
      this.#held.delete(virtualIp);
      this.#leaving.add(virtualIp);
    };
    relay.bus.on('client.connected', connected);
    relay.bus.on('client.disconnected', disconnected);
    this.#detach = () => {
      relay.bus.off('client.connected', connected);
      relay.bus.off('client.disconnected', disconnected);
    };
  }

  /** The relay holding `virtualIp`, if a live one wrote it within the TTL. */
  holder(virtualIp: number): string | undefined {
    if (this.#held.has(virtualIp)) return this.relayId;
    const seen = this.#seen.get(virtualIp);
    if (seen === undefined) return undefined;
    if (this.#now() - seen.at > this.#ttlMs) {
      this.#seen.delete(virtualIp);
      return undefined;
    }
    return seen.relay;
  }

  /** Virtual hosts with a connection here. */
  get held(): ReadonlySet<number> {
    return new Set(this.#held.keys());
  }

  #put(virtualIp: number): void {
    this.#writer.write(this.#bucket, presenceKey(virtualIp), this.relayId).then(
      () => this.#recovered(),
      (error: unknown) => this.#failed(error),
    );
  }

  #heartbeat(): void {
    for (const virtualIp of this.#held.keys()) this.#put(virtualIp);
    for (const virtualIp of this.#leaving) this.#delete(virtualIp).catch((error: unknown) => this.#failed(error));
    this.#leaving.clear();
  }

  #delete(virtualIp: number): Promise<number> {
    return this.#writer.write(this.#bucket, presenceKey(virtualIp), '', 'delete');
  }

  /** One warning per outage, not one per host per heartbeat. */
  #failed(error: unknown): void {
    if (this.#failing) return;
    this.#failing = true;
    this.#logger.warn({ err: error }, 'cannot write presence to the cluster; other relays stop routing to this one after the presence TTL');
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#logger.info('presence written to the cluster again');
  }

  /** Stops heartbeats and the watch, and deletes what this relay held (a clean stop). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#detach?.();
    this.#watch?.stop();
    await Promise.allSettled([...this.#held.keys(), ...this.#leaving].map((virtualIp) => this.#delete(virtualIp)));
    this.#writer.close();
    this.#held.clear();
    this.#leaving.clear();
  }
}
