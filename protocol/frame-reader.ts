/**
 * The framing core: the one incremental reader of docs/PROTOCOL.md §1 that every receiver uses.
 * Bytes go in as chunks of any size; one state machine reads frame headers (split anywhere) and
 * checks them; how a body is handed out depends on which handlers the reader is given:
 *
 * - whole frames (`{ frame }`): every frame whole, header included (FrameDecoder, decoder.ts);
 * - data pieces (`{ frame, dataPieces }`): an ArbitraryData frame that spans TCP chunks is handed
 *   out as the pieces it arrived in, never copied into a frame of its own (data-pieces.ts), so a
 *   receiver that forwards it writes the pieces (the relay, the client session);
 * - payload stream (`{ frame, payload }`): ArbitraryData payloads are handed out as slices of the
 *   chunks as they arrive, without waiting for the frame's end (the bench's load clients, which
 *   must never copy the bytes they measure).
 *
 * Every other frame, and in the first two modes a data frame inside one chunk, is handed to
 * `frame` whole, as a slice of the chunk when it fits in one.
 *
 * A frame handler may hold its frame (return false): the reader keeps it, and every byte after
 * it, until `resume()`. The relay does that when the frame's destination is over its high-water
 * mark, so a source stops *before* it writes more to a full destination (§7, issue 9, finding 5).
 *
 * Nothing is allocated from a declared length: the length is checked against the frame limit as
 * soon as its 4 bytes are in, and against its type's body size (body-sizes.ts) as soon as the
 * header is in; buffers grow with what has arrived. The data path allocates nothing per frame
 * beyond what it hands out (a slice, or the pieces array).
 */
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, PacketType } from './constants.ts';
import { checkFrameHeader } from './body-sizes.ts';
import { ProtocolError } from './errors.ts';
import { CONNECTION_ID_OFFSET, DATA_FRAME_HEAD_BYTES, FRAME_LENGTH_BYTES, FRAME_TYPE_OFFSET, readU32 } from './fields.ts';
import { DataPieces } from './data-pieces.ts';
import { FrameAssembly } from './frame-assembly.ts';
import type { DataPiecesHandlers, FrameReaderHandlers, FrameReaderOptions, PayloadStreamHandlers, WholeFrameHandlers } from './frame-handlers.ts';

export { COALESCE_MIN_PIECE_BYTES } from './data-pieces.ts';
export type * from './frame-handlers.ts';

const enum Delivery {
  WholeFrames,
  DataPieces,
  PayloadStream,
}

const enum State {
  /** Between frames, or gathering a header split across chunks in #head. */
  Header,
  /** A frame being copied together (#assembly). */
  Assembling,
  /** An ArbitraryData frame being gathered as pieces (#pieces). */
  Pieces,
  /** An ArbitraryData payload being streamed (#payloadLeft bytes to come). */
  Payload,
}

const enum Held {
  Nothing,
  Frame,
  Pieces,
}

type AnyHandlers = WholeFrameHandlers & Partial<DataPiecesHandlers & PayloadStreamHandlers>;

export class FrameReader {
  readonly #handlers: AnyHandlers;
  readonly #delivery: Delivery;
  #maxFrameBytes: number;
  #state = State.Header;
  #failed = false;
  #stopped = false;
  /** Frames completed so far (delivered or held): the relay's measure of progress on a connection. */
  #frames = 0;
  /** Bytes of a header split across chunks (with ArbitraryData's connection id). */
  readonly #head = new Uint8Array(DATA_FRAME_HEAD_BYTES);
  #headFilled = 0;
  /** A frame being copied together. */
  readonly #assembly = new FrameAssembly();
  /** The data frame being gathered as pieces. */
  readonly #pieces = new DataPieces();
  /** The data frame whose pieces or payload are arriving. */
  #connectionId = 0;
  #payloadLeft = 0;
  /** A frame the handler held, delivered again by resume() (fields, not a closure: nothing allocated to hold). */
  #held = Held.Nothing;
  #heldType = 0;
  #heldFrame: Uint8Array | undefined;
  #heldPieces: Uint8Array[] | undefined;
  #heldConnectionId = 0;
  #heldBytes = 0;
  /** Bytes after a held frame, not looked at yet. */
  #rest: Uint8Array[] = [];
  #restBytes = 0;

  constructor(handlers: FrameReaderHandlers, options: FrameReaderOptions = {}) {
    const all = handlers as AnyHandlers;
    if (all.dataPieces !== undefined && all.payload !== undefined) {
      throw new TypeError('FrameReader: give dataPieces or payload, not both');
    }
    this.#handlers = all;
    this.#delivery =
      all.dataPieces !== undefined ? Delivery.DataPieces : all.payload !== undefined ? Delivery.PayloadStream : Delivery.WholeFrames;
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /**
   * Changes the frame limit for frames whose header has not arrived yet: the relay accepts only
   * Hello-sized frames until it has answered Hello (docs/PROTOCOL.md §2).
   */
  set maxFrameBytes(bytes: number) {
    this.#maxFrameBytes = bytes;
  }

  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  /** Frames completed so far. */
  get frames(): number {
    return this.#frames;
  }

  /** True while a frame has started arriving and is not complete. */
  get incomplete(): boolean {
    return this.#headFilled > 0 || this.#state !== State.Header;
  }

  /** True while a frame is held (the handler returned false) and not yet resumed. */
  get holding(): boolean {
    return this.#held !== Held.Nothing;
  }

  /**
   * Bytes the reader keeps: an incomplete frame, a held frame and the bytes after it. A payload
   * being streamed is not kept: only its header counted, while split.
   */
  get bufferedBytes(): number {
    const body = this.#state === State.Assembling ? this.#assembly.filled : this.#state === State.Pieces ? this.#pieces.received : 0;
    return this.#headFilled + body + this.#heldBytes + this.#restBytes;
  }

  /** Stops delivering frames, also from the rest of a chunk being pushed, and lets go of what it kept. */
  stop(): void {
    this.#stopped = true;
    this.#state = State.Header;
    this.#headFilled = 0;
    this.#assembly.clear();
    this.#pieces.clear();
    this.#payloadLeft = 0;
    this.#unhold();
    this.#rest = [];
    this.#restBytes = 0;
  }

  /**
   * Feeds bytes. Returns a ProtocolError when they are not a valid frame stream; after that
   * every push returns an error. While a frame is held the bytes are only kept.
   */
  push(chunk: Uint8Array): ProtocolError | undefined {
    if (this.#failed) return new ProtocolError('ERR_MALFORMED_PACKET', 'decoder already failed');
    if (this.#stopped) return undefined;
    if (this.#held !== Held.Nothing || this.#rest.length > 0) {
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
    if (held !== Held.Nothing) {
      // Not holding while the handler runs; the held fields stay (counted in bufferedBytes) until it took the frame.
      this.#held = Held.Nothing;
      const again =
        held === Held.Frame
          ? this.#handlers.frame(this.#heldType, this.#heldFrame!)
          : this.#handlers.dataPieces!(this.#heldConnectionId, this.#heldBytes, this.#heldPieces!);
      if (this.#stopped) return undefined;
      if (again === false) {
        this.#held = held;
        return undefined;
      }
      this.#unhold();
    }
    while (this.#rest.length > 0 && this.#held === Held.Nothing && !this.#stopped) {
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
    while (offset < end && !this.#stopped && this.#held === Held.Nothing) {
      switch (this.#state) {
        case State.Pieces: {
          const pieces = this.#pieces;
          const n = Math.min(pieces.left, end - offset);
          pieces.add(chunk.subarray(offset, offset + n));
          offset += n;
          if (pieces.left === 0) this.#finishPieces();
          continue;
        }
        case State.Payload: {
          const n = Math.min(this.#payloadLeft, end - offset);
          this.#payloadLeft -= n;
          if (this.#payloadLeft === 0) this.#endFrame();
          this.#handlers.payload!(this.#connectionId, chunk.subarray(offset, offset + n));
          offset += n;
          continue;
        }
        case State.Assembling: {
          const assembly = this.#assembly;
          const n = Math.min(assembly.left, end - offset);
          assembly.append(chunk.subarray(offset, offset + n));
          offset += n;
          if (assembly.complete) this.#finishAssembly();
          continue;
        }
      }
      if (this.#headFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        // Fast path: the header is in this chunk.
        const length = readU32(chunk, offset);
        const type = chunk[offset + FRAME_TYPE_OFFSET];
        const error = this.#checkLength(length) ?? this.#checkType(type, length);
        if (error) return error;
        const total = FRAME_LENGTH_BYTES + length;
        if (type === PacketType.ArbitraryData && this.#delivery === Delivery.PayloadStream) {
          if (end - offset >= DATA_FRAME_HEAD_BYTES) {
            this.#startPayload(readU32(chunk, offset + CONNECTION_ID_OFFSET), total - DATA_FRAME_HEAD_BYTES);
            offset += DATA_FRAME_HEAD_BYTES;
            continue;
          }
        } else {
          if (end - offset >= total) {
            const frame = chunk.subarray(offset, offset + total);
            offset += total;
            this.#frames++;
            this.#deliverFrame(type, frame);
            continue;
          }
          if (type !== PacketType.ArbitraryData || this.#delivery === Delivery.WholeFrames) {
            this.#startAssembly(total, chunk.subarray(offset, end));
            offset = end;
            continue;
          }
          if (end - offset >= DATA_FRAME_HEAD_BYTES) {
            this.#connectionId = readU32(chunk, offset + CONNECTION_ID_OFFSET);
            this.#state = State.Pieces;
            this.#pieces.start(total);
            this.#pieces.add(chunk.subarray(offset, end));
            offset = end;
            continue;
          }
        }
      }
      // Slow path: a header split across chunks is gathered in #head.
      const need = this.#headFilled < FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES : DATA_FRAME_HEAD_BYTES;
      const take = Math.min(need - this.#headFilled, end - offset);
      this.#head.set(chunk.subarray(offset, offset + take), this.#headFilled);
      this.#headFilled += take;
      offset += take;
      // The length is judged as soon as its 4 bytes are in, before the type byte (§1).
      if (this.#headFilled < FRAME_LENGTH_BYTES) continue;
      const length = readU32(this.#head, 0);
      const error = this.#checkLength(length);
      if (error) return error;
      if (this.#headFilled < FRAME_HEADER_BYTES) continue;
      const type = this.#head[FRAME_TYPE_OFFSET];
      const invalid = this.#checkType(type, length);
      if (invalid) return invalid;
      const total = FRAME_LENGTH_BYTES + length;
      if (type !== PacketType.ArbitraryData || this.#delivery === Delivery.WholeFrames) {
        this.#headFilled = 0;
        this.#startAssembly(total, this.#head.subarray(0, FRAME_HEADER_BYTES));
        if (this.#assembly.complete) this.#finishAssembly();
        continue;
      }
      if (this.#headFilled < DATA_FRAME_HEAD_BYTES) continue;
      this.#headFilled = 0;
      const connectionId = readU32(this.#head, CONNECTION_ID_OFFSET);
      if (this.#delivery === Delivery.PayloadStream) {
        this.#startPayload(connectionId, total - DATA_FRAME_HEAD_BYTES);
        continue;
      }
      this.#connectionId = connectionId;
      this.#state = State.Pieces;
      this.#pieces.start(total);
      // Copied (it is below the coalescing threshold): #head is reused for the next split header.
      this.#pieces.add(this.#head.subarray(0, DATA_FRAME_HEAD_BYTES));
      if (this.#pieces.left === 0) this.#finishPieces();
    }
    if (this.#held !== Held.Nothing && offset < end) {
      // Ahead of any chunks pushed while holding: they came after this one.
      this.#rest.unshift(chunk.subarray(offset));
      this.#restBytes += end - offset;
    }
    return undefined;
  }

  /** A frame is complete (delivered or held next); the reader is between frames again. */
  #endFrame(): void {
    this.#state = State.Header;
    this.#frames++;
  }

  #deliverFrame(type: number, frame: Uint8Array): void {
    if (this.#handlers.frame(type, frame) === false && !this.#stopped) {
      this.#hold(Held.Frame, type, frame, undefined, 0, frame.length);
    }
  }

  #startAssembly(total: number, first: Uint8Array): void {
    this.#assembly.start(total, first);
    this.#state = State.Assembling;
  }

  #finishAssembly(): void {
    const frame = this.#assembly.finish();
    this.#endFrame();
    this.#deliverFrame(frame[FRAME_TYPE_OFFSET], frame);
  }

  #finishPieces(): void {
    const connectionId = this.#connectionId;
    const frameBytes = this.#pieces.received;
    const pieces = this.#pieces.finish();
    this.#endFrame();
    if (this.#handlers.dataPieces!(connectionId, frameBytes, pieces) === false && !this.#stopped) {
      this.#hold(Held.Pieces, 0, undefined, pieces, connectionId, frameBytes);
    }
  }

  #startPayload(connectionId: number, payloadBytes: number): void {
    // An empty payload has nothing to stream: the frame is complete with its head.
    if (payloadBytes === 0) {
      this.#frames++;
      return;
    }
    this.#connectionId = connectionId;
    this.#payloadLeft = payloadBytes;
    this.#state = State.Payload;
  }

  #hold(held: Held, type: number, frame: Uint8Array | undefined, pieces: Uint8Array[] | undefined, connectionId: number, bytes: number): void {
    this.#held = held;
    this.#heldType = type;
    this.#heldFrame = frame;
    this.#heldPieces = pieces;
    this.#heldConnectionId = connectionId;
    this.#heldBytes = bytes;
  }

  #unhold(): void {
    this.#held = Held.Nothing;
    this.#heldFrame = undefined;
    this.#heldPieces = undefined;
    this.#heldBytes = 0;
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
