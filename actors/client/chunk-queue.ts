/**
 * Received chunks in order, taken from the front. A reader that lags keeps the queue from ever
 * emptying (the sender refills the window long before the last chunk is read), so a taken slot
 * must not keep its chunk alive: it is cleared at once, and the array is cut down once the taken
 * slots are most of it. Without that, every chunk of a long transfer to a slow reader stayed
 * referenced until the queue next ran empty.
 */
export class ChunkQueue {
  #chunks: Array<Uint8Array | undefined> = [];
  #head = 0;

  /** Chunks waiting. */
  get length(): number {
    return this.#chunks.length - this.#head;
  }

  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
  }

  /** The oldest chunk, or undefined when none waits. */
  shift(): Uint8Array | undefined {
    if (this.#head >= this.#chunks.length) return undefined;
    const chunk = this.#chunks[this.#head];
    this.#chunks[this.#head++] = undefined;
    if (this.#head === this.#chunks.length) this.clear();
    // Amortised O(1): the copy moves at most as many slots as were taken since the last one.
    else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    return chunk;
  }

  clear(): void {
    this.#chunks = [];
    this.#head = 0;
  }
}

/** Taken slots tolerated before the array is cut down (each costs a pointer, not a chunk). */
const COMPACT_AFTER = 1024;
