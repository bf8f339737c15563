/**
 * Which addresses of the subnet are taken, and how many each IPv6 prefix holds. One bit per
 * usable address (512 KiB for a /10) and a cursor that only moves forward, so allocation is O(1)
 * with a million entries, and an address given back by `alphanet store reclaim` is handed out
 * again only once the cursor has gone round the whole subnet.
 */
import { StoreError } from './errors.ts';
import { ipv6PrefixOf } from './ipv6-prefix.ts';
import type { Subnet } from './subnet.ts';

/** The per-prefix cap: at most `cap` virtual IPs for the real IPs of one IPv6 /`length`. */
export interface Ipv6PrefixCap {
  length: number;
  /** 0 = no cap. */
  cap: number;
}

/** How the exhaustion messages tell an operator to free addresses. */
const RECLAIM_HINT = 'the relay operator can free the addresses of clients unseen for a while with `alphanet store reclaim --unseen-for 90d` (while the relay is stopped)';

export class AddressPool {
  readonly subnet: Subnet;
  readonly #taken: Uint8Array;
  #free: number;
  #cursor = 0;
  #highest = -1;
  readonly #prefix: Ipv6PrefixCap;
  readonly #perPrefix = new Map<string, number>();

  constructor(subnet: Subnet, prefix: Ipv6PrefixCap) {
    this.subnet = subnet;
    this.#prefix = prefix;
    this.#taken = new Uint8Array(Math.ceil(subnet.usable / 8));
    this.#free = subnet.usable;
  }

  get free(): number {
    return this.#free;
  }

  /** True when `virtualIp` is taken. */
  isTaken(virtualIp: number): boolean {
    const offset = virtualIp - this.subnet.first;
    return (this.#taken[offset >>> 3] & (1 << (offset & 7))) !== 0;
  }

  /** Marks a stored mapping taken (at load). */
  take(realIp: string, virtualIp: number): void {
    const offset = virtualIp - this.subnet.first;
    this.#taken[offset >>> 3] |= 1 << (offset & 7);
    this.#free--;
    if (offset > this.#highest) this.#highest = offset;
    const prefix = ipv6PrefixOf(realIp, this.#prefix.length);
    if (prefix !== undefined) this.#perPrefix.set(prefix, (this.#perPrefix.get(prefix) ?? 0) + 1);
  }

  /** Gives an address back (reclaim). */
  release(realIp: string, virtualIp: number): void {
    const offset = virtualIp - this.subnet.first;
    this.#taken[offset >>> 3] &= ~(1 << (offset & 7));
    this.#free++;
    const prefix = ipv6PrefixOf(realIp, this.#prefix.length);
    if (prefix === undefined) return;
    const left = (this.#perPrefix.get(prefix) ?? 1) - 1;
    if (left === 0) this.#perPrefix.delete(prefix);
    else this.#perPrefix.set(prefix, left);
  }

  /** After load: allocation continues just past the highest stored address. */
  startAfterHighest(): void {
    this.#cursor = (this.#highest + 1) % this.subnet.usable;
  }

  /**
   * The next free address for `realIp`, taken. Throws ERR_ADDRESS_SPACE_EXHAUSTED when the subnet
   * is full or the real IP's IPv6 prefix holds its cap; both messages say how to recover.
   */
  allocate(realIp: string): number {
    const prefix = this.#prefix.cap > 0 ? ipv6PrefixOf(realIp, this.#prefix.length) : undefined;
    if (prefix !== undefined && (this.#perPrefix.get(prefix) ?? 0) >= this.#prefix.cap) {
      throw new StoreError(
        'ERR_ADDRESS_SPACE_EXHAUSTED',
        `the IPv6 prefix ${prefix} of ${realIp} already holds ${this.#prefix.cap} virtual IPs, the relay's cap per prefix (--ipv6-prefix-cap), so that one network cannot use up the pool; ${RECLAIM_HINT}, or raise the cap`,
      );
    }
    if (this.#free === 0) {
      throw new StoreError(
        'ERR_ADDRESS_SPACE_EXHAUSTED',
        `every one of the ${this.subnet.usable} usable addresses of ${this.subnet.cidr} is taken, and each stays with its real IP for good; ${RECLAIM_HINT}, or start a new store with a larger --subnet`,
      );
    }
    const { usable } = this.subnet;
    let offset = this.#cursor;
    while (this.isTaken(this.subnet.first + offset)) offset = offset + 1 === usable ? 0 : offset + 1;
    this.#cursor = offset + 1 === usable ? 0 : offset + 1;
    const virtualIp = this.subnet.first + offset;
    this.take(realIp, virtualIp);
    return virtualIp;
  }
}
