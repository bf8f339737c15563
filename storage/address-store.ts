/**
 * The relay's narrow view of persistence: the permanent real-IP → virtual-IP map.
 * Only storage/ knows that lowdb sits behind it.
 */

/** One row of the map. */
export interface AddressEntry {
  /** The client's real IP as the relay saw it (IPv4 dotted quad, or IPv6 text). */
  realIp: string;
  /** The permanent virtual IPv4 address, as an unsigned 32-bit integer. */
  virtualIp: number;
}

export interface AddressStore {
  /**
   * What entries are keyed by: `ip` (real IPs) or `key` (`key:<base64url>` identity keys). A relay
   * refuses a store of the other mode. Optional: a store without one is an `ip` store.
   */
  readonly identityMode?: 'ip' | 'key';
  /**
   * The virtual IP of `realIp`, allocating a fresh one from the subnet when it has none.
   * Resolves only once the mapping is durably on disk (fsynced), so a client is never told an
   * address a crash could take back. Concurrent calls for the same real IP resolve to the same
   * address. Rejects with a StoreError (e.g. ERR_ADDRESS_SPACE_EXHAUSTED, ERR_STORE_WRITE).
   */
  findOrAllocate(realIp: string): Promise<number>;
  /** The virtual IP of `realIp` if it has one, without allocating. */
  lookup(realIp: string): number | undefined;
  /**
   * Records that `realIp` was seen now, for `alphanet store reclaim`; nothing waits for it. The
   * relay calls it when a client leaves. Optional: a store without last-seen days has none.
   */
  touch?(realIp: string): void;
  /** Every entry (order unspecified). */
  entries(): IterableIterator<AddressEntry>;
  /** Number of entries. */
  readonly size: number;
  /** Resolves when every allocation so far is on disk. */
  flush(): Promise<void>;
  /** Flushes and releases the store; later calls reject. */
  close(): Promise<void>;
}
