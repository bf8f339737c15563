/**
 * The relay's receive-side framing: protocol/decoder.ts's rules (docs/PROTOCOL.md §1) with one
 * difference on the data path. An ArbitraryData frame that spans several TCP chunks is handed
 * out as the list of chunk slices it is made of, never copied into a frame of its own: the
 * relay only forwards it, and writing the slices (one writev) moves the same bytes.
 *
 * Measured with `npm run bench` (docs/BENCHMARKS.md): assembling each 64 KiB frame cost an
 * allocation and a copy per frame, and the garbage those buffers made kept V8's GC threads busy
 * for as much CPU as the relay's own thread; the relay used three times the proxy's CPU per byte.
 * Control frames are small and are still assembled whole, so their decoding is unchanged.
 */
import { FRAME_HEADER_BYTES, PacketType } from '../../protocol/constants.ts';
import { ProtocolError } from '../../protocol/errors.ts';

/** Frame header plus ArbitraryData's u32 connection id. */
const DATA_HEAD_BYTES = FRAME_HEADER_BYTES + 4;

export interface FrameReaderHandlers {
  /** A whole frame, header included; may share memory with the chunk pushed. */
  frame(type: number, frame: Uint8Array): void;
  /**
   * An ArbitraryData frame that arrived in pieces: concatenated, `pieces` are the whole frame
   * (header included), `frameBytes` long. The pieces share memory with the chunks pushed.
   */
  dataPieces(connectionId: number, frameBytes: number, pieces: Uint8Array[]): void;
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
  /** Bytes of a header split across chunks. */
  readonly #head = new Uint8Array(DATA_HEAD_BYTES);
  #headFilled = 0;
  /** A control frame being assembled. */
  #control: Uint8Array | undefined;
  #controlFilled = 0;
  /** A data frame being gathered as slices. */
  #pieces: Uint8Array[] | undefined;
  #dataLeft = 0;
  #dataBytes = 0;
  #connectionId = 0;

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

  /** Stops delivering frames, also from the rest of a chunk being pushed. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Feeds bytes. Returns a ProtocolError when they are not a valid frame stream; after that
   * every push returns an error.
   */
  push(chunk: Uint8Array): ProtocolError | undefined {
    if (this.#failed) return new ProtocolError('ERR_MALFORMED_PACKET', 'decoder already failed');
    let offset = 0;
    const end = chunk.length;
    while (offset < end && !this.#stopped) {
      if (this.#pieces !== undefined) {
        const n = Math.min(this.#dataLeft, end - offset);
        this.#pieces.push(chunk.subarray(offset, offset + n));
        this.#dataLeft -= n;
        offset += n;
        if (this.#dataLeft === 0) {
          const pieces = this.#pieces;
          this.#pieces = undefined;
          this.#handlers.dataPieces(this.#connectionId, this.#dataBytes, pieces);
        }
        continue;
      }
      if (this.#control !== undefined) {
        const control = this.#control;
        const n = Math.min(control.length - this.#controlFilled, end - offset);
        control.set(chunk.subarray(offset, offset + n), this.#controlFilled);
        this.#controlFilled += n;
        offset += n;
        if (this.#controlFilled === control.length) {
          this.#control = undefined;
          this.#handlers.frame(control[4], control);
        }
        continue;
      }
      if (this.#headFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // Fast path: the header is in this chunk.
        const length = readU32(chunk, offset);
        const error = this.#checkLength(length);
        if (error) return error;
        const total = 4 + length;
        if (end - offset >= total) {
          const frame = chunk.subarray(offset, offset + total);
          offset += total;
          this.#handlers.frame(frame[4], frame);
          continue;
        }
        const type = chunk[offset + 4];
        if (type === PacketType.ArbitraryData && end - offset >= DATA_HEAD_BYTES) {
          this.#startData(readU32(chunk, offset + FRAME_HEADER_BYTES), total, chunk.subarray(offset, end));
          offset = end;
          continue;
        }
        if (type !== PacketType.ArbitraryData) {
          this.#control = new Uint8Array(total);
          this.#control.set(chunk.subarray(offset, end));
          this.#controlFilled = end - offset;
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
      const total = 4 + length;
      const type = this.#head[4];
      if (type !== PacketType.ArbitraryData || total < DATA_HEAD_BYTES) {
        // Not data, or data too short to hold its id: assembled and judged whole, as before.
        const frame = new Uint8Array(total);
        frame.set(this.#head.subarray(0, FRAME_HEADER_BYTES));
        this.#headFilled = 0;
        if (total === FRAME_HEADER_BYTES) this.#handlers.frame(type, frame);
        else {
          this.#control = frame;
          this.#controlFilled = FRAME_HEADER_BYTES;
        }
        continue;
      }
      if (this.#headFilled < DATA_HEAD_BYTES) continue;
      this.#headFilled = 0;
      // The head is copied: #head is reused for the next split header.
      this.#startData(readU32(this.#head, FRAME_HEADER_BYTES), total, this.#head.slice());
    }
    return undefined;
  }

  #startData(connectionId: number, frameBytes: number, first: Uint8Array): void {
    this.#connectionId = connectionId;
    this.#dataBytes = frameBytes;
    this.#dataLeft = frameBytes - first.length;
    if (this.#dataLeft === 0) this.#handlers.dataPieces(connectionId, frameBytes, [first]);
    else this.#pieces = [first];
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
