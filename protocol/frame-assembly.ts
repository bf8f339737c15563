/**
 * Copies one frame together from the chunks it arrives in, for FrameReader (frame-reader.ts):
 * control frames, and every frame in the whole-frames delivery. The buffer grows with the bytes
 * received (doubling, up to the frame's size), never from the declared length alone, so a header
 * that claims a big frame and sends nothing more costs nothing (docs/PROTOCOL.md §1).
 */

/** Smallest buffer a frame starts in: every control frame but a long Error fits (body-sizes.ts). */
const FIRST_BYTES = 64;

export class FrameAssembly {
  #frame: Uint8Array | undefined;
  #filled = 0;
  #total = 0;

  /** Bytes of the frame received so far (0 between frames). */
  get filled(): number {
    return this.#filled;
  }

  /** True once every byte of the frame is in. */
  get complete(): boolean {
    return this.#filled === this.#total;
  }

  /** Bytes still to come. */
  get left(): number {
    return this.#total - this.#filled;
  }

  /** Starts a frame of `total` bytes (header included) with its first bytes, which are copied. */
  start(total: number, first: Uint8Array): void {
    const frame = new Uint8Array(Math.min(total, Math.max(FIRST_BYTES, first.length)));
    frame.set(first);
    this.#frame = frame;
    this.#filled = first.length;
    this.#total = total;
  }

  /** Copies in the next bytes of the frame (at most `left`). */
  append(bytes: Uint8Array): void {
    let frame = this.#frame!;
    const need = this.#filled + bytes.length;
    if (need > frame.length) {
      const grown = new Uint8Array(Math.min(this.#total, Math.max(need, frame.length * 2)));
      grown.set(frame.subarray(0, this.#filled));
      this.#frame = frame = grown;
    }
    frame.set(bytes, this.#filled);
    this.#filled = need;
  }

  /** Hands over the complete frame and is ready for the next. */
  finish(): Uint8Array {
    const frame = this.#frame!;
    this.clear();
    return frame;
  }

  /** Drops the frame being assembled. */
  clear(): void {
    this.#frame = undefined;
    this.#filled = 0;
    this.#total = 0;
  }
}
