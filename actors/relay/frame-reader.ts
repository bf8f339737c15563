/**
 * The relay's receive-side framing: protocol/decoder.ts's rules (docs/PROTOCOL.md §1) with two
 * differences on the data path.
 *
 * An ArbitraryData frame that spans several TCP chunks is handed out as a list of pieces, never
 * copied into a frame of its own: the relay only forwards it, and writing the pieces (one writev)
 * moves the same bytes. Measured with `npm run bench` (docs/BENCHMARKS.md): assembling each 64 KiB
 * frame cost an allocation and a copy per frame, and the garbage kept V8's GC threads as busy as
 * the relay's own thread. Big pieces (a TCP read of at least COALESCE_MIN_PIECE_BYTES) are kept as
 * slices of the chunk; small ones are copied into a buffer that grows with the bytes received, so
 * a frame trickled one byte per segment costs about one byte per byte, not a slice object per
 * byte (issue 9, finding 1: ~113 B of heap per byte sent).
 *
 * The handler may hold a data frame (return false): the reader keeps it, and every byte after it,
 * until `resume()`. The relay does that when the frame's destination is over its high-water mark,
 * so a source stops *before* it writes more to a full destination (§7, issue 9, finding 5).
 *
 * Nothing is allocated from a declared length: the length is checked against the frame limit
 * and against its type's body size (protocol/body-sizes.ts) as soon as the header is in, and
 * buffers grow with what has arrived.
 */
import { FRAME_HEADER_BYTES, PacketType } from '../../protocol/constants.ts';
import { checkFrameHeader } from '../../protocol/body-sizes.ts';
import { ProtocolError } from '../../protocol/errors.ts';

/** Frame header plus ArbitraryData's u32 connection id. */
const DATA_HEAD_BYTES = FRAME_HEADER_BYTES + 4;
/** A piece of a data frame at least this long is kept as a slice of its TCP chunk, not copied. */
export const COALESCE_MIN_PIECE_BYTES = 4 * 1024;
/** First and largest size of a buffer that small pieces are copied into. */
const COALESCE_FIRST_BYTES = 256;
const COALESCE_MAX_BYTES = 16 * 1024;

export interface FrameReaderHandlers {
  /**
   * A whole frame, header included; may share memory with the chunk pushed. Return false to
   * hold it: it counts as not delivered, and it is delivered again by `resume()`.
   */
  frame(type: number, frame: Uint8Array): boolean | void;
  /**
   * An ArbitraryData frame that arrived in pieces: concatenated, `pieces` are the whole frame
   * (header included), `frameBytes` long. Return false to hold it, as for `frame`.
   */
  dataPieces(connectionId: number, frameBytes: number, pieces: Uint8Array[]): boolean | void;
}

export interface FrameReaderOptions {
  /** Largest frame accepted (the length field's value). */
  maxFrameBytes: number;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

export class FrameReader {
  readonly #handlers: FrameReaderHandlers;
  #maxFrameBytes: number;
  #failed = false;
  #stopped = false;
  /** Frames completed so far (delivered or held): the relay's measure of progress on a connection. */
  #frames = 0;
  /** Bytes of a header split across chunks. */
  readonly #head = new Uint8Array(DATA_HEAD_BYTES);
  #headFilled = 0;
  /** A control frame being assembled; grows with the bytes received up to #controlTotal. */
  #control: Uint8Array | undefined;
  #controlFilled = 0;
  #controlTotal = 0;
  /** A data frame being gathered as pieces. */
  #pieces: Uint8Array[] | undefined;
  #dataLeft = 0;
  #dataBytes = 0;
  #connectionId = 0;
  /** Where small pieces of the current data frame are copied. */
  #coalesce: Uint8Array | undefined;
  #coalesceFilled = 0;
  #nextCoalesceBytes = COALESCE_FIRST_BYTES;
  /** A frame the handler held, delivered again by resume(). */
  #held: (() => boolean | void) | undefined;
  #heldBytes = 0;
  /** Bytes after a held frame, not looked at yet. */
  #rest: Uint8Array[] = [];
  #restBytes = 0;

  constructor(handlers: FrameReaderHandlers, options: FrameReaderOptions) {
    this.#handlers = handlers;
    this.#maxFrameBytes = options.maxFrameBytes;
  }

  /**
   * Changes the frame limit for frames whose header has not arrived yet: the relay accepts only
   * Hello-sized frames until it has answered Hello (docs/PROTOCOL.md §2).
   */
  set maxFrameBytes(bytes: number) {
    this.#maxFrameBytes = bytes;
  }

  /** Frames completed so far. */
  get frames(): number {
    return this.#frames;
  }

  /** True while a frame has started arriving and is not complete. */
  get incomplete(): boolean {
    return this.#headFilled > 0 || this.#control !== undefined || this.#pieces !== undefined;
  }

  /** True while a frame is held (the handler returned false) and not yet resumed. */
  get holding(): boolean {
    return this.#held !== undefined;
  }

  /** Bytes the reader keeps: an incomplete frame, a held frame and the bytes after it. */
  get bufferedBytes(): number {
    const data = this.#pieces !== undefined ? this.#dataBytes - this.#dataLeft : 0;
    return this.#headFilled + this.#controlFilled + data + this.#heldBytes + this.#restBytes;
  }

  /** Stops delivering frames, also from the rest of a chunk being pushed, and lets go of what it kept. */
  stop(): void {
    this.#stopped = true;
    this.#held = undefined;
    this.#heldBytes = 0;
    this.#rest = [];
    this.#restBytes = 0;
    this.#pieces = undefined;
    this.#coalesce = undefined;
    this.#control = undefined;
    this.#controlFilled = 0;
    this.#headFilled = 0;
  }

  /**
   * Feeds bytes. Returns a ProtocolError when they are not a valid frame stream; after that
   * every push returns an error. While a frame is held the bytes are only kept.
   */
  push(chunk: Uint8Array): ProtocolError | undefined {
    if (this.#failed) return new ProtocolError('ERR_MALFORMED_PACKET', 'decoder already failed');
    if (this.#stopped) return undefined;
    if (this.#held !== undefined || this.#rest.length > 0) {
      this.#rest.push(chunk);
      this.#restBytes += chunk.length;
      return undefined;
    }
    return this.#process(chunk);
  }

  /**
   * Delivers the held frame again, then the bytes after it, until done or a frame is held again.
   * Returns a ProtocolError if those bytes are not a valid frame stream.
   */
  resume(): ProtocolError | undefined {
    if (this.#failed || this.#stopped) return undefined;
    const held = this.#held;
    if (held !== undefined) {
      this.#held = undefined;
      if (held() === false && !this.#stopped) {
        this.#held = held;
        return undefined;
      }
      this.#heldBytes = 0;
    }
    while (this.#rest.length > 0 && this.#held === undefined && !this.#stopped) {
      const chunk = this.#rest.shift()!;
      this.#restBytes -= chunk.length;
      const error = this.#process(chunk);
      if (error) return error;
    }
    return undefined;
  }

  #process(chunk: Uint8Array): ProtocolError | undefined {
    let offset = 0;
    const end = chunk.length;
    while (offset < end && !this.#stopped && this.#held === undefined) {
      if (this.#pieces !== undefined) {
        const n = Math.min(this.#dataLeft, end - offset);
        this.#addPiece(chunk.subarray(offset, offset + n));
        offset += n;
        if (this.#dataLeft === 0) this.#finishData();
        continue;
      }
      if (this.#control !== undefined) {
        const n = Math.min(this.#controlTotal - this.#controlFilled, end - offset);
        this.#appendControl(chunk.subarray(offset, offset + n));
        offset += n;
        if (this.#controlFilled === this.#controlTotal) this.#finishControl();
        continue;
      }
      if (this.#headFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // Fast path: the header is in this chunk.
        const length = readU32(chunk, offset);
        const type = chunk[offset + 4];
        const error = this.#checkLength(length) ?? this.#checkType(type, length);
        if (error) return error;
        const total = 4 + length;
        if (end - offset >= total) {
          const frame = chunk.subarray(offset, offset + total);
          offset += total;
          this.#frames++;
          this.#deliverFrame(type, frame);
          continue;
        }
        if (type !== PacketType.ArbitraryData) {
          this.#startControl(total, chunk.subarray(offset, end));
          offset = end;
          continue;
        }
        if (end - offset >= DATA_HEAD_BYTES) {
          this.#startData(readU32(chunk, offset + FRAME_HEADER_BYTES), total);
          this.#addPiece(chunk.subarray(offset, end));
          offset = end;
          continue;
        }
      }
      // Slow path: a header split across chunks is gathered in #head.
      const need = this.#headFilled < FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES : DATA_HEAD_BYTES;
      const take = Math.min(need - this.#headFilled, end - offset);
      this.#head.set(chunk.subarray(offset, offset + take), this.#headFilled);
      this.#headFilled += take;
      offset += take;
      // The length is judged as soon as its 4 bytes are in, before the type byte (§1).
      if (this.#headFilled < 4) continue;
      const length = readU32(this.#head, 0);
      const error = this.#checkLength(length);
      if (error) return error;
      if (this.#headFilled < FRAME_HEADER_BYTES) continue;
      const type = this.#head[4];
      const invalid = this.#checkType(type, length);
      if (invalid) return invalid;
      const total = 4 + length;
      if (type !== PacketType.ArbitraryData) {
        this.#headFilled = 0;
        this.#startControl(total, this.#head.subarray(0, FRAME_HEADER_BYTES));
        if (this.#controlFilled === total) this.#finishControl();
        continue;
      }
      if (this.#headFilled < DATA_HEAD_BYTES) continue;
      this.#headFilled = 0;
      this.#startData(readU32(this.#head, FRAME_HEADER_BYTES), total);
      // Copied (it is below the coalescing threshold): #head is reused for the next split header.
      this.#addPiece(this.#head.subarray(0, DATA_HEAD_BYTES));
      if (this.#dataLeft === 0) this.#finishData();
    }
    if (this.#held !== undefined && offset < end) {
      // Ahead of any chunks pushed while holding: they came after this one.
      this.#rest.unshift(chunk.subarray(offset));
      this.#restBytes += end - offset;
    }
    return undefined;
  }

  #deliverFrame(type: number, frame: Uint8Array): void {
    if (this.#handlers.frame(type, frame) === false && !this.#stopped) {
      this.#held = () => this.#handlers.frame(type, frame);
      this.#heldBytes = frame.length;
    }
  }

  #startControl(total: number, first: Uint8Array): void {
    // Control bodies are at most a few hundred bytes (body-sizes.ts), but still grown as they come.
    this.#control = new Uint8Array(Math.min(total, Math.max(64, first.length)));
    this.#control.set(first);
    this.#controlFilled = first.length;
    this.#controlTotal = total;
  }

  #appendControl(bytes: Uint8Array): void {
    let control = this.#control!;
    const need = this.#controlFilled + bytes.length;
    if (need > control.length) {
      const grown = new Uint8Array(Math.min(this.#controlTotal, Math.max(need, control.length * 2)));
      grown.set(control.subarray(0, this.#controlFilled));
      this.#control = control = grown;
    }
    control.set(bytes, this.#controlFilled);
    this.#controlFilled = need;
  }

  #finishControl(): void {
    const frame = this.#control!;
    this.#control = undefined;
    this.#controlFilled = 0;
    this.#frames++;
    this.#deliverFrame(frame[4], frame);
  }

  #startData(connectionId: number, frameBytes: number): void {
    this.#connectionId = connectionId;
    this.#dataBytes = frameBytes;
    this.#dataLeft = frameBytes;
    this.#pieces = [];
    this.#nextCoalesceBytes = COALESCE_FIRST_BYTES;
  }

  /** Adds the next bytes of the current data frame: a slice if big, else copied (see top). */
  #addPiece(piece: Uint8Array): void {
    const remaining = this.#dataLeft;
    this.#dataLeft -= piece.length;
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

  #finishData(): void {
    this.#seal(false);
    const pieces = this.#pieces!;
    const connectionId = this.#connectionId;
    const frameBytes = this.#dataBytes;
    this.#pieces = undefined;
    this.#frames++;
    if (this.#handlers.dataPieces(connectionId, frameBytes, pieces) === false && !this.#stopped) {
      this.#held = () => this.#handlers.dataPieces(connectionId, frameBytes, pieces);
      this.#heldBytes = frameBytes;
    }
  }

  #checkType(type: number, length: number): ProtocolError | undefined {
    const error = checkFrameHeader(type, length);
    if (error !== undefined) this.#failed = true;
    return error;
  }

  #checkLength(length: number): ProtocolError | undefined {
    if (length === 0) {
      this.#failed = true;
      return new ProtocolError('ERR_FRAME_EMPTY', 'frame length 0: every frame has at least a type byte');
    }
    if (length > this.#maxFrameBytes) {
      this.#failed = true;
      return new ProtocolError('ERR_FRAME_TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.#maxFrameBytes} bytes`);
    }
    return undefined;
  }
}
