/**
 * Per-host datagram rate limits (docs/PROTOCOL.md §10): one token bucket of packets and one of
 * bytes per host key (limits.ts), refilled from the time the chunk under way began (no clock read
 * per datagram). A datagram over either bucket is dropped and counted, never delayed: a late
 * game packet is worth nothing.
 */
import type { ResolvedRelayOptions } from './relay-options.ts';

/** Both buckets of one host. Plain fields: taking a token allocates nothing. */
export class DatagramBucket {
  packets: number;
  bytes: number;
  at: number;
  /** Connections of the host key holding datagram ports: the bucket goes when it reaches 0. */
  users = 0;

  constructor(packets: number, bytes: number, at: number) {
    this.packets = packets;
    this.bytes = bytes;
    this.at = at;
  }
}

/** Token buckets by host key, kept only while a connection of that key holds a datagram port. */
export class DatagramRates {
  readonly #buckets = new Map<string, DatagramBucket>();
  readonly #rate: number;
  readonly #burst: number;
  readonly #byteRate: number;
  readonly #byteBurst: number;

  constructor(options: ResolvedRelayOptions) {
    this.#rate = options.datagramRate;
    this.#burst = options.datagramBurst;
    this.#byteRate = options.datagramByteRate;
    // The byte bucket lasts as long as the packet bucket: a burst of the same duration.
    this.#byteBurst = Math.max(options.datagramByteRate * (options.datagramBurst / Math.max(1, options.datagramRate)), 64 * 1024);
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** The bucket of `hostKey`, made full on its first user. */
  join(hostKey: string, now: number): DatagramBucket {
    let bucket = this.#buckets.get(hostKey);
    if (bucket === undefined) {
      bucket = new DatagramBucket(this.#burst, this.#byteBurst, now);
      this.#buckets.set(hostKey, bucket);
    }
    bucket.users++;
    return bucket;
  }

  /** A user leaves; the last one takes the bucket with it. */
  leave(hostKey: string): void {
    const bucket = this.#buckets.get(hostKey);
    if (bucket === undefined) return;
    if (--bucket.users <= 0) this.#buckets.delete(hostKey);
  }

  /** Takes one datagram of `bytes` from the bucket; false (and nothing taken) when either is empty. */
  take(bucket: DatagramBucket, bytes: number, now: number): boolean {
    const elapsed = now - bucket.at;
    if (elapsed > 0) {
      bucket.at = now;
      bucket.packets = Math.min(this.#burst, bucket.packets + (elapsed * this.#rate) / 1000);
      bucket.bytes = Math.min(this.#byteBurst, bucket.bytes + (elapsed * this.#byteRate) / 1000);
    }
    if (bucket.packets < 1 || bucket.bytes < bytes) return false;
    bucket.packets -= 1;
    bucket.bytes -= bytes;
    return true;
  }
}
