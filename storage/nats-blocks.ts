/**
 * Blocks of addresses a cluster store claims for itself (storage/nats-kv-store.ts): block n is
 * the usable addresses `first + n·size … first + (n+1)·size − 1` of the subnet (the last one
 * clipped). A block is claimed by creating `block.<n>`, a key never written before and never
 * deleted, so exactly one store instance owns it; only that instance hands its addresses out.
 */
import { StoreError } from './errors.ts';
import type { Subnet } from './subnet.ts';

/**
 * A real IP as a KV key: `ip.` and the address, where IPv4 keeps its dots and anything a key may
 * not hold (IPv6's colons, a zone's %) becomes `_` and two hex digits.
 */
export function ipKey(realIp: string): string {
  return `ip.${realIp.replace(/[^A-Za-z0-9.]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;
}

/** A create refused because the key holds a value (see isKeyTaken in nats-kv-store.ts). */
type IsTaken = (error: unknown) => boolean;
/** Creates `key` (a key never written before) holding `value`; rejects if it was ever written. */
type Create = (key: string, value: string) => Promise<unknown>;

export class NatsBlockAllocator {
  readonly #create: Create;
  readonly #subnet: Subnet;
  readonly #owner: string;
  readonly #size: number;
  readonly #blockCount: number;
  /** Blocks anyone claimed, as far as the watch and our own refused claims tell. */
  readonly #claimed = new Set<number>();
  /** Addresses of our blocks not handed out yet, lowest first; given-back ones go in front. */
  #free: number[] = [];
  #cursor = 0;
  #claiming: Promise<void> | undefined;
  #exhausted = false;
  readonly #isTaken: IsTaken;

  constructor(create: Create, subnet: Subnet, owner: string, size: number, isTaken: IsTaken) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`block size must be a positive integer, not ${size}`);
    this.#create = create;
    this.#subnet = subnet;
    this.#owner = owner;
    this.#size = size;
    this.#blockCount = Math.ceil(subnet.usable / size);
    this.#isTaken = isTaken;
  }

  /** Another store (or an earlier run) holds block `n`. */
  claimed(n: number): void {
    if (Number.isInteger(n)) this.#claimed.add(n);
  }

  /** An address of ours, never told to anyone, back for the next caller. */
  giveBack(virtualIp: number): void {
    this.#free.unshift(virtualIp);
  }

  /** The next address of our blocks, claiming a new block when they are used up. */
  async take(): Promise<number> {
    for (;;) {
      const next = this.#free.shift();
      if (next !== undefined) {
        // Claim the next block ahead of need, so a burst of new clients rarely waits for one.
        if (this.#free.length < this.#size / 4) void this.#claimNext().catch(() => {});
        return next;
      }
      if (this.#exhausted) throw this.#exhaustedError();
      await this.#claimNext();
    }
  }

  /** One claim at a time: concurrent callers share it. */
  #claimNext(): Promise<void> {
    return (this.#claiming ??= this.#claim().finally(() => (this.#claiming = undefined)));
  }

  async #claim(): Promise<void> {
    for (;;) {
      while (this.#cursor < this.#blockCount && this.#claimed.has(this.#cursor)) this.#cursor++;
      if (this.#cursor >= this.#blockCount) {
        this.#exhausted = true;
        return;
      }
      const n = this.#cursor;
      try {
        await this.#create(`block.${n}`, this.#owner);
      } catch (error) {
        if (!this.#isTaken(error)) {
          throw new StoreError('ERR_STORE_WRITE', `claiming a block of addresses in the cluster's bucket failed: ${(error as Error).message}`, { cause: error });
        }
        this.#claimed.add(n);
        continue;
      }
      this.#claimed.add(n);
      const start = this.#subnet.first + n * this.#size;
      const end = Math.min(start + this.#size, this.#subnet.first + this.#subnet.usable);
      for (let ip = start; ip < end; ip++) this.#free.push(ip);
      return;
    }
  }

  #exhaustedError(): StoreError {
    return new StoreError(
      'ERR_ADDRESS_SPACE_EXHAUSTED',
      `every block of the ${this.#subnet.usable} usable addresses of ${this.#subnet.cidr} is claimed by a relay of the cluster and this relay's are used up; each address stays with its real IP for good; start a new cluster bucket with a larger --subnet`,
    );
  }
}
