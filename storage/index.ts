/**
 * The relay's persistent real-IP → virtual-IP map. The only module that knows about lowdb.
 *
 * Layout (docs/STORAGE.md): the `--db` file is a small manifest (subnet, shard count, and what
 * must be on disk); the map lives in `<db>.shards/NNN.json`, one lowdb JSON file per shard chosen
 * by a hash of the real IP, behind a journal; `<db>.lock` is held while a process writes.
 */
import { Memory } from 'lowdb';
import { DEFAULT_IPV6_PREFIX_CAP, DEFAULT_IPV6_PREFIX_LENGTH } from './ipv6-prefix.ts';
import { checkShardCount } from './file-store.ts';
import { ShardedAddressStore, type ShardBackend, type ShardData, type StoreWriteInfo } from './sharded-store.ts';
import { DEFAULT_SUBNET, parseSubnet } from './subnet.ts';
import type { IdentityMode } from './identity-mode.ts';

export type { AddressEntry, AddressStore } from './address-store.ts';
export { StoreError, type StoreErrorCode } from './errors.ts';
export { DEFAULT_SUBNET, parseSubnet, type Subnet } from './subnet.ts';
export { DurableJsonFile } from './durable-file.ts';
export { DEFAULT_CHECKPOINT_ENTRIES, ShardedAddressStore, type SeenEntry, type StoreWriteInfo } from './sharded-store.ts';
export { DEFAULT_DB_PATH, DEFAULT_SHARD_COUNT, openAddressStore, type AddressStoreOptions } from './file-store.ts';
export { MANIFEST_VERSION } from './manifest.ts';
export { LOCK_SUFFIX, probeStoreLock } from './lock.ts';
export { DEFAULT_IPV6_PREFIX_CAP, DEFAULT_IPV6_PREFIX_LENGTH, ipv6PrefixOf } from './ipv6-prefix.ts';
export { DAY_MS, dayOf, formatDay } from './last-seen.ts';
export { DEFAULT_IDENTITY_MODE, IDENTITY_MODES, KEY_ENTRY_PREFIX, identityModeMismatch, isKeyEntry, type IdentityMode } from './identity-mode.ts';

export interface MemoryAddressStoreOptions {
  /** @default '100.64.0.0/10' */
  subnet?: string;
  /** @default 16 */
  shards?: number;
  /** @default undefined */
  onWrite?: (info: StoreWriteInfo) => void;
  /** At most this many virtual IPs per IPv6 prefix (0 = no cap). @default 256 */
  ipv6PrefixCap?: number;
  /** @default 64 */
  ipv6PrefixLength?: number;
  /** The clock in ms, for last-seen days. @default Date.now */
  now?: () => number;
  /** What entries are keyed by (docs/STORAGE.md "Identity mode"). @default 'ip' */
  identityMode?: IdentityMode;
}

/**
 * A store held in memory through lowdb's Memory adapter, with the same allocation and
 * group-commit logic as the file store. For specs and embedding; nothing survives the process.
 */
export async function openMemoryAddressStore(options: MemoryAddressStoreOptions = {}): Promise<ShardedAddressStore> {
  const subnet = parseSubnet(options.subnet ?? DEFAULT_SUBNET);
  const backend: ShardBackend = {
    shardCount: checkShardCount(options.shards ?? 16),
    adapter: () => new Memory<ShardData>(),
    afterBatch: async () => {},
  };
  return ShardedAddressStore.load({
    subnet,
    backend,
    onWrite: options.onWrite,
    ipv6Prefix: { length: options.ipv6PrefixLength ?? DEFAULT_IPV6_PREFIX_LENGTH, cap: options.ipv6PrefixCap ?? DEFAULT_IPV6_PREFIX_CAP },
    now: options.now,
    identityMode: options.identityMode,
  });
}
export {
  DEFAULT_ADDRESS_BUCKET,
  DEFAULT_BLOCK_SIZE,
  NatsAddressStore,
  type NatsAddressStoreOptions,
} from './nats-kv-store.ts';
export { openBucket } from './nats-bucket.ts';
export { KvWriter, KV_WRITE_TIMEOUT_MS, type KvWriteKind } from './nats-writer.ts';
