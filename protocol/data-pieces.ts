/**
 * Gathers one ArbitraryData frame that spans several TCP chunks as a list of pieces, for
 * FrameReader's data-pieces delivery (frame-reader.ts). A receiver that only forwards the frame
 * writes the pieces (one writev) and moves the same bytes: assembling each 64 KiB frame cost an
 * allocation and a copy per frame, and the garbage kept V8's GC threads as busy as the relay's
 * own thread (docs/BENCHMARKS.md).
 *
 * Big pieces (a TCP read of at least COALESCE_MIN_PIECE_BYTES) are kept as slices of their
 * chunk; small ones are copied into a buffer that grows with the bytes received, so a frame
 * trickled one byte per segment costs about one byte per byte, not a slice object per byte
 * (issue 9, finding 1: ~113 B of heap per byte sent). Nothing is allocated from the frame's
 * declared length: a coalescing buffer is at most what is still to come.
 *
 * One gatherer serves every frame of a reader; only the pieces array handed out is new per frame.
 */

/** A piece of a data frame at least this long is kept as a slice of its TCP chunk, not copied. */
export const COALESCE_MIN_PIECE_BYTES = 4 * 1024;
/** First size of a buffer that small pieces are copied into. */
const COALESCE_FIRST_BYTES = 256;
/** Largest size a coalescing buffer doubles up to. */
const COALESCE_MAX_BYTES = 16 * 1024;

export class DataPieces {
  #pieces: Uint8Array[] | undefined;
  /** The whole frame's bytes, header included, and how many of them are still to come. */
  #frameBytes = 0;
  #left = 0;
  /** Where small pieces of the current frame are copied. */
  #coalesce: Uint8Array | undefined;
  #coalesceFilled = 0;
  #nextCoalesceBytes = COALESCE_FIRST_BYTES;

  /** Bytes of the current frame still to come. */
  get left(): number {
    return this.#left;
  }

  /** Bytes of the current frame received so far. */
  get received(): number {
    return this.#frameBytes - this.#left;
  }

  /** Starts a frame of `frameBytes` bytes (header included). */
  start(frameBytes: number): void {
    this.#pieces = [];
    this.#frameBytes = frameBytes;
    this.#left = frameBytes;
    this.#nextCoalesceBytes = COALESCE_FIRST_BYTES;
  }

  /**
   * Adds the next bytes of the current frame (at most `left`): kept as a slice if big, else
   * copied. A piece that is copied may be reused by the caller afterwards.
   */
  add(piece: Uint8Array): void {
    const remaining = this.#left;
    this.#left -= piece.length;
    if (piece.length >= COALESCE_MIN_PIECE_BYTES) {
      this.#seal(false);
      this.#pieces!.push(piece);
      return;
    }
    let buffer = this.#coalesce;
    if (buffer === undefined || buffer.length - this.#coalesceFilled < piece.length) {
      if (buffer !== undefined) this.#seal(true);
      buffer = this.#coalesce = new Uint8Array(Math.min(remaining, Math.max(piece.length, this.#nextCoalesceBytes)));
    }
    buffer.set(piece, this.#coalesceFilled);
    this.#coalesceFilled += piece.length;
  }

  /** Ends the current frame (all of it added) and hands over its pieces; they concatenate to the frame. */
  finish(): Uint8Array[] {
    this.#seal(false);
    const pieces = this.#pieces!;
    this.#pieces = undefined;
    return pieces;
  }

  /** Drops the current frame. */
  clear(): void {
    this.#pieces = undefined;
    this.#coalesce = undefined;
    this.#coalesceFilled = 0;
    this.#frameBytes = 0;
    this.#left = 0;
  }

  /**
   * Moves the coalescing buffer into the pieces. It grows (doubling) only after one was filled,
   * so a buffer sealed early by a big piece wastes at most COALESCE_FIRST_BYTES.
   */
  #seal(full: boolean): void {
    const buffer = this.#coalesce;
    if (buffer === undefined) return;
    this.#pieces!.push(buffer.subarray(0, this.#coalesceFilled));
    this.#coalesce = undefined;
    this.#coalesceFilled = 0;
    this.#nextCoalesceBytes = full ? Math.min(COALESCE_MAX_BYTES, buffer.length * 2) : COALESCE_FIRST_BYTES;
  }
}
