/**
 * Incremental frame decoder: bytes in (chunks of any size), whole frames out. It is the framing
 * core (frame-reader.ts) in its whole-frames delivery, kept under the name and API the codec's
 * users know: a plain callback, no hold. Like the core it checks a frame's claimed length
 * against the limit and against its type (protocol/body-sizes.ts) before allocating anything
 * for it, does no I/O, and reports bad input as a returned ProtocolError rather than throwing
 * (docs/PROTOCOL.md §1).
 */
import { DEFAULT_MAX_FRAME_BYTES } from './constants.ts';
import type { ProtocolError } from './errors.ts';
import { FrameReader } from './frame-reader.ts';

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

export class FrameDecoder {
  readonly maxFrameBytes: number;
  readonly #reader: FrameReader;

  constructor(onFrame: FrameHandler, options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    // Wrapped so that a callback which happens to return false does not hold its frame.
    this.#reader = new FrameReader(
      {
        frame: (type, frame) => {
          onFrame(type, frame);
        },
      },
      { maxFrameBytes: this.maxFrameBytes },
    );
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.#reader.bufferedBytes;
  }

  /** Stops delivering frames, also from the rest of a chunk being pushed (e.g. the connection closed). */
  stop(): void {
    this.#reader.stop();
  }

  /**
   * Feeds bytes. Returns a ProtocolError when the input is not a valid frame stream; after
   * that the decoder accepts nothing more and every later push returns the same kind of error.
   */
  push(chunk: Uint8Array): ProtocolError | undefined {
    return this.#reader.push(chunk);
  }
}
