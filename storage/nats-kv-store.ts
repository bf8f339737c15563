/**
 * The address map of a cluster of relays (issue 13, docs/CLUSTER.md), in a JetStream KV bucket
 * that every relay of the cluster shares, read through a local cache kept current by a watch.
 *
 * Why the scheme is safe on Debian's nats-server 2.9.10: there, compare-and-set on a replicated
 * bucket is not serialised (nats-server #4320): a create after a delete, or an update with an
 * expected revision, can have several winners. A create on a key that was never written is safe.
 * So every write here is a create (`previousSeq: 0`, which also refuses a key holding a delete
 * marker, unlike `kv.create`, which would fall back to the unsafe update) on a key that is never
 * deleted or updated:
 *
 * - `block.<n>` → `<relayId> <instance>`: a store claims a block of addresses for itself before
 *   it hands any out. One claim per block, ever: a block belongs to one store instance (one run
 *   of one relay) for good, and a restarted relay claims new blocks rather than resuming old ones
 *   (two processes started with the same --relay-id stay apart). At most one partly used block
 *   per run is left unused.
 * - `ip.<real IP>` → `{"realIp","virtualIp","relay"}`: the assignment. The first create wins; a
 *   store whose create is refused reads the winner and takes back the address it had picked
 *   (never told to anyone, and from its own block, so no one else can hold it).
 * - `key.<base64url>` → `{"realIp":"key:<base64url>","virtualIp","relay"}`: the same in identity
 *   mode `key` (docs/STORAGE.md "Identity mode"), where an address belongs to a client's proven key.
 * - `subnet` → the CIDR, created by the first store; another subnet is ERR_SUBNET_MISMATCH.
 * - `mode` → `ip` or `key`, created by the first store (a bucket from before modes, holding
 *   assignments, is `ip`); a store asking for the other mode is ERR_IDENTITY_MODE_MISMATCH.
 *
 * An address is handed out only from its block's owner, once, and told to a client only after
 * its `ip.` key is acknowledged, so an address told to one real IP is never handed to another.
 */
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator } from '@nats-io/transport-node';
import { formatIpv4, parseIpv4 } from '../protocol/address.ts';
import type { AddressEntry, AddressStore } from './address-store.ts';
import { StoreError } from './errors.ts';
import { DEFAULT_IPV6_PREFIX_CAP, DEFAULT_IPV6_PREFIX_LENGTH, ipv6PrefixOf } from './ipv6-prefix.ts';
import { DEFAULT_SUBNET, parseSubnet, type Subnet } from './subnet.ts';
import { ipKey, NatsBlockAllocator } from './nats-blocks.ts';
import { openBucket } from './nats-bucket.ts';
import { DEFAULT_IDENTITY_MODE, IDENTITY_MODES, KEY_ENTRY_PREFIX, isKeyEntry, type IdentityMode } from './identity-mode.ts';
import { KvWriter } from './nats-writer.ts';

/** The bucket the relays of a cluster share. */
export const DEFAULT_ADDRESS_BUCKET = 'alphanet-addresses';
/**
 * Addresses per block claim: one KV create per 64 new clients, and at most 63 addresses left
 * unused per relay run.
 */
export const DEFAULT_BLOCK_SIZE = 64;
/** Writes tried on a bucket just created, NEW_BUCKET_RETRY_MS apart (2 s in all). */
const NEW_BUCKET_ATTEMPTS = 40;
const NEW_BUCKET_RETRY_MS = 50;
/** How long opening waits for the cache to catch up with the bucket. */
const CACHE_LOAD_TIMEOUT_MS = 30_000;

export interface NatsAddressStoreOptions {
  /** The NATS connection; the store never closes it (its owner does). */
  connection: NatsConnection;
  /** This relay's name in the cluster, written beside each block and assignment. */
  relayId: string;
  /** @default 'alphanet-addresses' */
  bucket?: string;
  /** @default '100.64.0.0/10' */
  subnet?: string;
  /** @default 64 */
  blockSize?: number;
  /** JetStream replicas of a new bucket (1, 3 or 5). @default 1 */
  replicas?: number;
  /**
   * At most this many virtual IPs per IPv6 prefix (0 = no cap). Counted in the local cache, so
   * relays assigning in the same instant may pass it by what they have in flight. @default 256
   */
  ipv6PrefixCap?: number;
  /** @default 64 */
  ipv6PrefixLength?: number;
  /**
   * What entries are keyed by: real IPs (`ip`) or proven keys (`key`, entries `key:<base64url>`).
   * Recorded in the bucket by its first store; every relay of the cluster must ask for the same.
   * @default 'ip'
   */
  identityMode?: IdentityMode;
}

/**
 * An entry as a KV key: `ip.<real IP>` (ipKey), or for a key entry `key.` and its base64url,
 * which a KV key may hold as it is.
 */
export function entryKvKey(entry: string): string {
  return isKeyEntry(entry) ? `key.${entry.slice(KEY_ENTRY_PREFIX.length)}` : ipKey(entry);
}

interface Stored {
  /** The entry: a real IP, or in key mode `key:<base64url>`. */
  realIp: string;
  virtualIp: string;
  relay: string;
}

/** True when a create was refused because the key already holds a value. */
export function isKeyTaken(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence || error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

export class NatsAddressStore implements AddressStore {
  readonly subnet: Subnet;
  readonly relayId: string;
  readonly #kv: KV;
  readonly #bucket: string;
  /** Assignments and block claims, pipelined (nats-writer.ts). */
  readonly #writer: KvWriter;
  readonly #blocks: NatsBlockAllocator;
  readonly #byReal = new Map<string, number>();
  readonly #byVirtual = new Map<number, string>();
  readonly #perPrefix = new Map<string, number>();
  readonly #prefix: { length: number; cap: number };
  readonly #inflight = new Map<string, Promise<number>>();
  #watch: QueuedIterator<KvEntry> | undefined;
  #mode: IdentityMode = DEFAULT_IDENTITY_MODE;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(kv: KV, bucket: string, writer: KvWriter, subnet: Subnet, relayId: string, blocks: NatsBlockAllocator, prefix: { length: number; cap: number }) {
    this.#kv = kv;
    this.#bucket = bucket;
    this.#writer = writer;
    this.subnet = subnet;
    this.relayId = relayId;
    this.#blocks = blocks;
    this.#prefix = prefix;
  }

  /** Binds (or creates) the bucket, checks its subnet, and loads the cache. */
  static async open(options: NatsAddressStoreOptions): Promise<NatsAddressStore> {
    const subnet = parseSubnet(options.subnet ?? DEFAULT_SUBNET);
    const bucket = options.bucket ?? DEFAULT_ADDRESS_BUCKET;
    let kv: KV;
    try {
      kv = await openBucket(options.connection, bucket, { history: 1, replicas: options.replicas ?? 1 });
    } catch (error) {
      throw new StoreError('ERR_STORE_READ', `cannot open the cluster's address bucket ${bucket}: ${(error as Error).message}`, { cause: error });
    }
    await checkSubnet(kv, bucket, subnet);
    const instance = `${options.relayId} ${randomBytes(6).toString('hex')}`;
    const writer = new KvWriter(options.connection);
    const create = (key: string, value: string) => writer.write(bucket, key, value, 'create');
    const blocks = new NatsBlockAllocator(create, subnet, instance, options.blockSize ?? DEFAULT_BLOCK_SIZE, isKeyTaken);
    const store = new NatsAddressStore(kv, bucket, writer, subnet, options.relayId, blocks, {
      length: options.ipv6PrefixLength ?? DEFAULT_IPV6_PREFIX_LENGTH,
      cap: options.ipv6PrefixCap ?? DEFAULT_IPV6_PREFIX_CAP,
    });
    try {
      await store.#load();
      store.#mode = await checkIdentityMode(kv, bucket, options.identityMode ?? DEFAULT_IDENTITY_MODE, store.#byReal.size > 0);
    } catch (error) {
      store.#watch?.stop();
      writer.close();
      throw error;
    }
    return store;
  }

  /** What entries are keyed by, as the bucket records it. */
  get identityMode(): IdentityMode {
    return this.#mode;
  }

  /** Watches the whole bucket; resolves once every value written before the open is cached. */
  async #load(): Promise<void> {
    const status = await this.#kv.status();
    const lastSeq = status.streamInfo.state.last_seq;
    const watch = await this.#kv.watch();
    this.#watch = watch;
    let caughtUp: () => void = () => {};
    const loaded = new Promise<void>((resolve) => (caughtUp = resolve));
    if (lastSeq === 0) caughtUp();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') this.#learn(entry);
        if (entry.revision >= lastSeq) caughtUp();
      }
    })().catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreError('ERR_STORE_READ', `the cluster's address bucket did not load within ${CACHE_LOAD_TIMEOUT_MS} ms`)),
        CACHE_LOAD_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([loaded, limit]);
    } catch (error) {
      watch.stop();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A value seen in the bucket (ours or another relay's) goes into the cache. */
  #learn(entry: KvEntry): void {
    if (entry.key.startsWith('block.')) {
      this.#blocks.claimed(Number(entry.key.slice(6)));
      return;
    }
    if (!entry.key.startsWith('ip.') && !entry.key.startsWith('key.')) return;
    let stored: Stored;
    try {
      stored = entry.json<Stored>();
    } catch {
      return;
    }
    const virtualIp = parseIpv4(stored.virtualIp);
    if (virtualIp !== undefined && typeof stored.realIp === 'string') this.#remember(stored.realIp, virtualIp);
  }

  #remember(realIp: string, virtualIp: number): void {
    if (this.#byReal.has(realIp)) return;
    this.#byReal.set(realIp, virtualIp);
    this.#byVirtual.set(virtualIp, realIp);
    const prefix = ipv6PrefixOf(realIp, this.#prefix.length);
    if (prefix !== undefined) this.#perPrefix.set(prefix, (this.#perPrefix.get(prefix) ?? 0) + 1);
  }

  findOrAllocate(realIp: string): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    const known = this.#byReal.get(realIp);
    if (known !== undefined) return Promise.resolve(known);
    const inflight = this.#inflight.get(realIp);
    if (inflight) return inflight;
    // One rule per bucket: a key-mode map holds key entries only, an ip-mode map real IPs only.
    if (this.#mode === 'key' ? !isKeyEntry(realIp) : isIP(realIp) === 0) {
      const what = this.#mode === 'key' ? 'a key entry (key:<base64url>), as this identity-mode key map holds' : 'an IP address';
      return Promise.reject(new StoreError('ERR_INVALID_REAL_IP', `${JSON.stringify(realIp)} is not ${what}`));
    }
    const promise = this.#assign(realIp).finally(() => this.#inflight.delete(realIp));
    this.#inflight.set(realIp, promise);
    return promise;
  }

  async #assign(realIp: string): Promise<number> {
    const prefix = this.#prefix.cap > 0 ? ipv6PrefixOf(realIp, this.#prefix.length) : undefined;
    if (prefix !== undefined && (this.#perPrefix.get(prefix) ?? 0) >= this.#prefix.cap) {
      throw new StoreError(
        'ERR_ADDRESS_SPACE_EXHAUSTED',
        `the IPv6 prefix ${prefix} of ${realIp} already holds ${this.#prefix.cap} virtual IPs, the cluster's cap per prefix (--ipv6-prefix-cap), so that one network cannot use up the pool; raise the cap`,
      );
    }
    const virtualIp = await this.#blocks.take();
    const key = entryKvKey(realIp);
    const value: Stored = { realIp, virtualIp: formatIpv4(virtualIp), relay: this.relayId };
    try {
      await this.#writer.write(this.#bucket, key, JSON.stringify(value), 'create');
    } catch (error) {
      if (!isKeyTaken(error)) {
        // The outcome is unknown (the create may have landed), so the address is not taken back.
        throw new StoreError('ERR_STORE_WRITE', `recording ${realIp}'s address in the cluster's bucket failed: ${(error as Error).message}`, { cause: error });
      }
      const winner = await this.#read(key, realIp);
      // Our own create may have landed before a retried publish was refused: then it is ours.
      if (winner !== virtualIp) this.#blocks.giveBack(virtualIp);
      this.#remember(realIp, winner);
      return winner;
    }
    this.#remember(realIp, virtualIp);
    return virtualIp;
  }

  /** The address another relay recorded for `realIp` first. */
  async #read(key: string, realIp: string): Promise<number> {
    const entry = await this.#kv.get(key);
    const virtualIp = entry?.operation === 'PUT' ? parseIpv4(entry.json<Stored>().virtualIp) : undefined;
    if (virtualIp === undefined) {
      throw new StoreError('ERR_STORE_CORRUPT', `the cluster's bucket refused a new entry for ${realIp} but holds no valid one under ${key}`);
    }
    return virtualIp;
  }

  lookup(realIp: string): number | undefined {
    return this.#byReal.get(realIp);
  }

  /** The real IP holding `virtualIp`, as far as the cache knows (routing across relays needs it). */
  realIpOf(virtualIp: number): string | undefined {
    return this.#byVirtual.get(virtualIp);
  }

  *entries(): IterableIterator<AddressEntry> {
    for (const [realIp, virtualIp] of this.#byReal) yield { realIp, virtualIp };
  }

  get size(): number {
    return this.#byReal.size;
  }

  async flush(): Promise<void> {
    if (this.#closed) throw closedError();
    await this.#settled();
  }

  async #settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight.values()]);
  }

  close(): Promise<void> {
    return (this.#closing ??= (async () => {
      this.#closed = true;
      await this.#settled();
      this.#writer.close();
      this.#watch?.stop();
    })());
  }
}

function closedError(): StoreError {
  return new StoreError('ERR_STORE_CLOSED', 'the address store is closed');
}

/**
 * The first store writes the bucket's identity mode; every later one must ask for the same, as a
 * lowdb store's manifest does (storage/identity-mode.ts): its addresses were promised under that
 * rule. A create on a never-written key, so nats-server #4320 does not apply. `assigned`: the
 * bucket already holds assignments (one from before modes has no `mode` key and is `ip`).
 */
async function checkIdentityMode(kv: KV, bucket: string, requested: IdentityMode, assigned: boolean): Promise<IdentityMode> {
  const read = async (): Promise<string | undefined> => {
    const entry = await kv.get('mode');
    return entry?.operation === 'PUT' ? entry.string() : undefined;
  };
  let stored = await read();
  if (stored === undefined) {
    const first = assigned ? DEFAULT_IDENTITY_MODE : requested;
    try {
      await kv.put('mode', first, { previousSeq: 0 });
      stored = first;
    } catch (error) {
      if (!isKeyTaken(error)) throw new StoreError('ERR_STORE_WRITE', `cannot write the identity mode of ${bucket}: ${(error as Error).message}`, { cause: error });
      stored = await read();
    }
  }
  if (stored === undefined || !IDENTITY_MODES.includes(stored as IdentityMode)) {
    throw new StoreError('ERR_STORE_CORRUPT', `the cluster's address bucket ${bucket} records identity mode ${JSON.stringify(stored)}, neither "ip" nor "key"`);
  }
  if (stored !== requested) {
    const meaning = (mode: string): string =>
      mode === 'key' ? "each virtual IP belongs to a client's identity key, wherever it connects from" : 'each virtual IP belongs to a real IP address';
    throw new StoreError(
      'ERR_IDENTITY_MODE_MISMATCH',
      `the cluster's address bucket ${bucket} is an identity-mode ${stored} map: ${meaning(stored)} (--identity-mode ${stored}). ` +
        `This relay asks for --identity-mode ${requested}, where ${meaning(requested)}: the cluster's addresses were promised under the other rule. ` +
        `Start every relay of the cluster with --identity-mode ${stored}, or run a ${requested}-mode cluster on another NATS server (nothing was written)`,
    );
  }
  return requested;
}

/** The first store writes the subnet; every later one must ask for the same. */
async function checkSubnet(kv: KV, bucket: string, subnet: Subnet): Promise<void> {
  // A bucket another relay created an instant ago may not take writes yet (nats-server 2.9 answers
  // "no responders", which the client reports as "jetstream is not enabled"): retry for a while.
  for (let attempt = 1; ; attempt++) {
    try {
      await kv.put('subnet', subnet.cidr, { previousSeq: 0 });
      return;
    } catch (error) {
      if (isKeyTaken(error)) break;
      if (attempt >= NEW_BUCKET_ATTEMPTS) {
        throw new StoreError('ERR_STORE_WRITE', `cannot write the subnet of ${bucket}: ${(error as Error).message}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, NEW_BUCKET_RETRY_MS));
    }
  }
  const stored = (await kv.get('subnet'))?.string();
  if (stored !== subnet.cidr) {
    throw new StoreError(
      'ERR_SUBNET_MISMATCH',
      `the cluster's address bucket ${bucket} holds the addresses of ${stored}, not ${subnet.cidr}: start every relay of the cluster with --subnet ${stored}`,
    );
  }
}
