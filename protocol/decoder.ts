/**
 * Incremental frame decoder: bytes in (chunks of any size), whole frames out.
 * It keeps explicit parse state, checks a frame's claimed length against the limit and against
 * its type (protocol/body-sizes.ts) before allocating anything for it, does no I/O, and reports bad input as a returned ProtocolError
 * rather than throwing (docs/PROTOCOL.md §1).
 */
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES } from './constants.ts';
import { ProtocolError } from './errors.ts';
import { checkFrameHeader } from './body-sizes.ts';

/**
 * Called once per complete frame. `frame` holds the whole frame, header included
 * (body = frame.subarray(5)); it may share memory with the pushed chunk, so copy it to keep it
 * past the next push.
 */
export type FrameHandler = (type: number, frame: Uint8Array) => void;

export interface FrameDecoderOptions {
  /**
   * Largest frame accepted, counting the type byte and body (the value of the length field).
   * @default DEFAULT_MAX_FRAME_BYTES (256 KiB)
   */
  maxFrameBytes?: number;
}

const enum State {
  Header,
  Body,
  Failed,
}

export class FrameDecoder {
  readonly maxFrameBytes: number;
  #onFrame: FrameHandler;
  #state = State.Header;
  // Partial header bytes carried between chunks.
  #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFilled = 0;
  // The frame being assembled across chunks.
  #frame: Uint8Array | undefined;
  #frameFilled = 0;
  #stopped = false;

  constructor(onFrame: FrameHandler, options: FrameDecoderOptions = {}) {
    this.#onFrame = onFrame;
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.#state === State.Body ? this.#frameFilled : this.#headerFilled;
  }

  /** Stops delivering frames, also from the rest of a chunk being pushed (e.g. the connection closed). */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Feeds bytes. Returns a ProtocolError when the input is not a valid frame stream; after
   * that the decoder accepts nothing more and every later push returns the same kind of error.
   */
  push(chunk: Uint8Array): ProtocolError | undefined {
    if (this.#state === State.Failed) return new ProtocolError('ERR_MALFORMED_PACKET', 'decoder already failed');
    let offset = 0;
    const end = chunk.length;
    while (offset < end && !this.#stopped) {
      if (this.#state === State.Header) {
        // Fast path: a whole frame inside the chunk is handed out without copying.
        if (this.#headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
          const length =
            ((chunk[offset] << 24) | (chunk[offset + 1] << 16) | (chunk[offset + 2] << 8) | chunk[offset + 3]) >>> 0;
          const error = this.#checkLength(length) ?? this.#checkType(chunk[offset + 4], length);
          if (error) return error;
          const total = 4 + length;
          if (end - offset >= total) {
            const frame = chunk.subarray(offset, offset + total);
            offset += total;
            this.#onFrame(frame[4], frame);
            continue;
          }
          this.#frame = new Uint8Array(total);
          this.#frame.set(chunk.subarray(offset, end));
          this.#frameFilled = end - offset;
          this.#state = State.Body;
          return undefined;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, end - offset);
        this.#header.set(chunk.subarray(offset, offset + take), this.#headerFilled);
        this.#headerFilled += take;
        offset += take;
        if (this.#headerFilled < 4) continue;
        const h = this.#header;
        const length = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
        const error = this.#checkLength(length);
        if (error) return error;
        if (this.#headerFilled < FRAME_HEADER_BYTES) continue;
        const invalid = this.#checkType(h[4], length);
        if (invalid) return invalid;
        this.#frame = new Uint8Array(4 + length);
        this.#frame.set(h);
        this.#frameFilled = FRAME_HEADER_BYTES;
        this.#headerFilled = 0;
        this.#state = State.Body;
        if (this.#frameFilled === this.#frame.length) this.#emitAssembled();
        continue;
      }
      // State.Body
      const frame = this.#frame!;
      const take = Math.min(frame.length - this.#frameFilled, end - offset);
      frame.set(chunk.subarray(offset, offset + take), this.#frameFilled);
      this.#frameFilled += take;
      offset += take;
      if (this.#frameFilled === frame.length) this.#emitAssembled();
    }
    return undefined;
  }

  #emitAssembled(): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    this.#frameFilled = 0;
    this.#state = State.Header;
    this.#onFrame(frame[4], frame);
  }

  /** §1: the declared length must fit the type before anything is allocated for the body. */
  #checkType(type: number, length: number): ProtocolError | undefined {
    const error = checkFrameHeader(type, length);
    if (error !== undefined) this.#state = State.Failed;
    return error;
  }

  #checkLength(length: number): ProtocolError | undefined {
    if (length === 0) {
      this.#state = State.Failed;
      return new ProtocolError('ERR_FRAME_EMPTY', 'frame length 0: every frame has at least a type byte');
    }
    if (length > this.maxFrameBytes) {
      this.#state = State.Failed;
      return new ProtocolError(
        'ERR_FRAME_TOO_LARGE',
        `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`,
      );
    }
    return undefined;
  }
}
