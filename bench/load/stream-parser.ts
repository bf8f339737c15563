/**
 * A receive-side frame parser for load clients that streams ArbitraryData payloads out as
 * slices of the incoming chunks instead of assembling each frame, so a benchmark client never
 * copies the bytes it measures and cannot become the bottleneck it is meant to observe.
 * Control frames (all small) are handed out whole, for protocol/decode.ts.
 * Same limits as protocol/decoder.ts (docs/PROTOCOL.md §1): a length of 0 or above the limit
 * is an error, and nothing is allocated by a claimed length before it is checked.
 */
import { FRAME_HEADER_BYTES, PacketType } from '../../protocol/constants.ts';
import { ProtocolError } from '../../protocol/errors.ts';

/** Frame header plus the u32 connection id of ArbitraryData. */
const DATA_HEAD_BYTES = FRAME_HEADER_BYTES + 4;

export interface StreamParserHandlers {
  /** A piece of an ArbitraryData payload; a frame's payload may come in several pieces. */
  data(connectionId: number, payload: Buffer): void;
  /** A whole non-data frame, header included; may share memory with the chunk. */
  control(frame: Uint8Array): void;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

export class StreamParser {
  readonly #maxFrameBytes: number;
  readonly #handlers: StreamParserHandlers;
  readonly #head = new Uint8Array(DATA_HEAD_BYTES);
  #headFilled = 0;
  #payloadLeft = 0;
  #connectionId = 0;
  #control: Uint8Array | undefined;
  #controlFilled = 0;
  #failed = false;

  constructor(maxFrameBytes: number, handlers: StreamParserHandlers) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#handlers = handlers;
  }

  /** Feeds bytes; returns a ProtocolError when they do not form a valid frame stream. */
  push(chunk: Buffer): ProtocolError | undefined {
    if (this.#failed) return new ProtocolError('ERR_MALFORMED_PACKET', 'parser already failed');
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, end - offset);
        this.#payloadLeft -= n;
        this.#handlers.data(this.#connectionId, chunk.subarray(offset, offset + n));
        offset += n;
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
          this.#handlers.control(control);
        }
        continue;
      }
      if (this.#headFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        const length = readU32(chunk, offset);
        const error = this.#check(length, chunk[offset + 4]);
        if (error) return error;
        if (chunk[offset + 4] === PacketType.ArbitraryData) {
          if (end - offset >= DATA_HEAD_BYTES) {
            this.#connectionId = readU32(chunk, offset + FRAME_HEADER_BYTES);
            this.#payloadLeft = length - 5;
            offset += DATA_HEAD_BYTES;
            continue;
          }
        } else if (end - offset >= 4 + length) {
          this.#handlers.control(chunk.subarray(offset, offset + 4 + length));
          offset += 4 + length;
          continue;
        } else {
          const frame = new Uint8Array(4 + length);
          frame.set(chunk.subarray(offset, end));
          this.#control = frame;
          this.#controlFilled = end - offset;
          offset = end;
          continue;
        }
      }
      // Slow path: a header split across chunks is gathered byte by byte.
      const need = this.#headFilled < FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES : DATA_HEAD_BYTES;
      const take = Math.min(need - this.#headFilled, end - offset);
      this.#head.set(chunk.subarray(offset, offset + take), this.#headFilled);
      this.#headFilled += take;
      offset += take;
      if (this.#headFilled < FRAME_HEADER_BYTES) continue;
      const length = readU32(this.#head, 0);
      const type = this.#head[4];
      const error = this.#check(length, type);
      if (error) return error;
      if (type !== PacketType.ArbitraryData) {
        const frame = new Uint8Array(4 + length);
        frame.set(this.#head.subarray(0, FRAME_HEADER_BYTES));
        this.#headFilled = 0;
        if (frame.length === FRAME_HEADER_BYTES) this.#handlers.control(frame);
        else {
          this.#control = frame;
          this.#controlFilled = FRAME_HEADER_BYTES;
        }
        continue;
      }
      if (this.#headFilled < DATA_HEAD_BYTES) continue;
      this.#connectionId = readU32(this.#head, FRAME_HEADER_BYTES);
      this.#payloadLeft = length - 5;
      this.#headFilled = 0;
    }
    return undefined;
  }

  #check(length: number, type: number): ProtocolError | undefined {
    if (length === 0 || length > this.#maxFrameBytes) {
      this.#failed = true;
      return new ProtocolError('ERR_FRAME_TOO_LARGE', `frame length ${length} outside 1..${this.#maxFrameBytes}`);
    }
    if (type === PacketType.ArbitraryData && length < 5) {
      this.#failed = true;
      return new ProtocolError('ERR_MALFORMED_PACKET', `ArbitraryData frame of length ${length} has no connection id`);
    }
    return undefined;
  }
}
