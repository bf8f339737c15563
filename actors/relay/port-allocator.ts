/**
 * Ephemeral ports of one virtual host (docs/PROTOCOL.md §5, BindRequest port 0), found in
 * bounded time. A bitmap of the 16,384 ephemeral ports plus a summary bit per 32-port word:
 * finding a free port reads at most 16 summary words and one port word, whether the range is
 * empty, nearly full or full. The scan it replaces walked the whole range once it was full,
 * ~0.2 ms a request, so a BindRequest flood stalled everyone (issue 9, finding 4).
 *
 * Ports are handed out next-fit from a cursor, as before: a port just released is not the next
 * one handed out, so a late packet for an old socket does not reach a new one.
 */

/** First port of the ephemeral range (IANA dynamic ports). */
export const EPHEMERAL_FIRST_PORT = 49152;
/** Ports in the range 49152..65535. */
export const EPHEMERAL_PORT_COUNT = 65536 - EPHEMERAL_FIRST_PORT;
const WORDS = EPHEMERAL_PORT_COUNT / 32;
const FULL = 0xffffffff;

/** The lowest clear bit of a 32-bit word at or above `from`, or -1. */
function lowestClearBit(word: number, from: number): number {
  const free = ~word & (from === 0 ? FULL : (FULL << from) >>> 0);
  if (free === 0) return -1;
  return 31 - Math.clz32(free & -free);
}

export class PortAllocator {
  /** Bit set: port taken. 2 KiB, allocated on the host's first ephemeral or in-range bind. */
  readonly #used = new Uint32Array(WORDS);
  /** Bit w set: word w of #used is full. */
  readonly #fullWords = new Uint32Array(WORDS / 32);
  #count = 0;
  #cursor = 0;

  /** Ephemeral ports taken. */
  get size(): number {
    return this.#count;
  }

  static inRange(port: number): boolean {
    return port >= EPHEMERAL_FIRST_PORT && port < EPHEMERAL_FIRST_PORT + EPHEMERAL_PORT_COUNT;
  }

  /** A free ephemeral port, now taken, or undefined when all 16,384 are taken. */
  allocate(): number | undefined {
    if (this.#count === EPHEMERAL_PORT_COUNT) return undefined;
    let index = this.#cursor;
    let word = index >>> 5;
    let bit = lowestClearBit(this.#used[word], index & 31);
    if (bit < 0) {
      word = this.#nextNonFullWord((word + 1) % WORDS);
      bit = lowestClearBit(this.#used[word], 0);
    }
    index = word * 32 + bit;
    this.#set(index);
    this.#cursor = (index + 1) % EPHEMERAL_PORT_COUNT;
    return EPHEMERAL_FIRST_PORT + index;
  }

  /** Marks an ephemeral port taken by an explicit bind. */
  take(port: number): void {
    const index = port - EPHEMERAL_FIRST_PORT;
    if (!(this.#used[index >>> 5] & (1 << (index & 31)))) this.#set(index);
  }

  /** Gives a port back (a no-op for ports outside the range or not taken). */
  release(port: number): void {
    if (!PortAllocator.inRange(port)) return;
    const index = port - EPHEMERAL_FIRST_PORT;
    const word = index >>> 5;
    const mask = 1 << (index & 31);
    if (!(this.#used[word] & mask)) return;
    this.#used[word] &= ~mask;
    this.#fullWords[word >>> 5] &= ~(1 << (word & 31));
    this.#count--;
  }

  #set(index: number): void {
    const word = index >>> 5;
    this.#used[word] |= 1 << (index & 31);
    if (this.#used[word] >>> 0 === FULL) this.#fullWords[word >>> 5] |= 1 << (word & 31);
    this.#count++;
  }

  /** The first word at or after `from` (wrapping) with a free port; one exists when #count < range. */
  #nextNonFullWord(from: number): number {
    const summaries = this.#fullWords.length;
    const first = from >>> 5;
    for (let i = 0; i <= summaries; i++) {
      const s = (first + i) % summaries;
      const bit = lowestClearBit(this.#fullWords[s], i === 0 ? from & 31 : 0);
      if (bit >= 0) return s * 32 + bit;
    }
    // Only the words of `first` below `from` are left.
    const bit = lowestClearBit(this.#fullWords[first], 0);
    return first * 32 + bit;
  }
}
