/**
 * What a cross-relay link delivers, made ready for this relay's stand-in (docs/CLUSTER.md "Across
 * relays"): a pair's frames (ArbitraryData, WindowUpdate, SocketEnd, SocketClosed) carry
 * connection id 0 on the link and must carry this relay's id for the pair. All four hold it at
 * byte 5 (protocol/fields.ts CONNECTION_ID_OFFSET), so it is written in place, and the bytes go on
 * in the chunks the link delivered them in: no frame is copied out or put together, and the
 * stand-in's stream gets one write per link chunk instead of one per frame, so the relay's reader
 * sees several frames per read and its data path writes them to the destination in one writev.
 *
 * The chunks are the link's own (fresh NATS message bodies, or buffers the link's reader
 * assembled), read by nobody else, so writing into them is safe. A header split across chunks
 * (at most 8 bytes in the first) is the only thing copied: it goes on as its own 9 bytes.
 *
 * Each header is checked like a relay reader checks it (known pair type, body size, frame
 * limit): a malformed frame resets the link alone, not the stand-in's connection and its other
 * pairs. Bytes before a bad header are passed on.
 */
import {
  CONNECTION_ID_OFFSET,
  DATA_FRAME_HEAD_BYTES,
  FRAME_LENGTH_BYTES,
  FRAME_TYPE_OFFSET,
  PacketType,
  checkFrameHeader,
  readU32,
  writeU32,
} from '../../../protocol/index.ts';

/** Largest frame a link may carry (as the FrameDecoder it replaces allowed). */
export const LINK_MAX_FRAME_BYTES = 64 * 1024 * 1024;

export interface LinkFramesHandlers {
  /** Bytes to write to the stand-in, in order (views of the link's chunks, or a fresh header). */
  bytes(bytes: Uint8Array): void;
  /** A SocketEnd (`closed` false) or SocketClosed (`closed` true) went out with the bytes before. */
  ended(closed: boolean): void;
}

/** Re-addresses a link's frames to `connectionId` as they pass (see the file comment). */
export class LinkFrames {
  readonly #connectionId: number;
  readonly #handlers: LinkFramesHandlers;
  /** Bytes of the current frame still to pass after its head. */
  #left = 0;
  /** A head split across chunks. */
  #head = new Uint8Array(DATA_FRAME_HEAD_BYTES);
  #headFilled = 0;
  /** SocketEnd/SocketClosed seen in the chunk under way: reported once its bytes are out. */
  #ends: boolean[] = [];

  constructor(connectionId: number, handlers: LinkFramesHandlers) {
    this.#connectionId = connectionId;
    this.#handlers = handlers;
  }

  /** Passes `chunk` on; returns why the link must be reset, or undefined. */
  push(chunk: Uint8Array): string | undefined {
    const length = chunk.length;
    let at = 0;
    let from = 0;
    let error: string | undefined;
    while (at < length) {
      if (this.#left > 0) {
        const take = Math.min(this.#left, length - at);
        this.#left -= take;
        at += take;
        continue;
      }
      if (this.#headFilled > 0 || length - at < DATA_FRAME_HEAD_BYTES) {
        // A head split across chunks: gathered here and passed on as its own bytes.
        const take = Math.min(DATA_FRAME_HEAD_BYTES - this.#headFilled, length - at);
        if (at > from) this.#handlers.bytes(chunk.subarray(from, at));
        this.#head.set(chunk.subarray(at, at + take), this.#headFilled);
        this.#headFilled += take;
        at += take;
        from = at;
        if (this.#headFilled < DATA_FRAME_HEAD_BYTES) break;
        const head = this.#head;
        this.#head = new Uint8Array(DATA_FRAME_HEAD_BYTES);
        this.#headFilled = 0;
        error = this.#frameHead(head, 0);
        if (error !== undefined) break;
        this.#handlers.bytes(head);
        continue;
      }
      error = this.#frameHead(chunk, at);
      if (error !== undefined) break;
      at += DATA_FRAME_HEAD_BYTES;
    }
    // Up to the end of the chunk, or up to a bad head.
    if (at > from) this.#handlers.bytes(chunk.subarray(from, at));
    const ends = this.#ends;
    if (ends.length > 0) {
      this.#ends = [];
      for (const closed of ends) this.#handlers.ended(closed);
    }
    return error;
  }

  /** Checks the head at `at`, writes this relay's connection id into it, and starts its frame. */
  #frameHead(bytes: Uint8Array, at: number): string | undefined {
    const frameLength = readU32(bytes, at);
    const type = bytes[at + FRAME_TYPE_OFFSET];
    if (type !== PacketType.ArbitraryData && type !== PacketType.WindowUpdate && type !== PacketType.SocketEnd && type !== PacketType.SocketClosed) {
      return `a frame of type ${type}, not one of a pair's`;
    }
    if (FRAME_LENGTH_BYTES + frameLength > LINK_MAX_FRAME_BYTES) return `a ${frameLength}-byte frame, above ${LINK_MAX_FRAME_BYTES}`;
    const bad = checkFrameHeader(type, frameLength);
    if (bad !== undefined) return bad.message;
    writeU32(bytes, at + CONNECTION_ID_OFFSET, this.#connectionId);
    this.#left = FRAME_LENGTH_BYTES + frameLength - DATA_FRAME_HEAD_BYTES;
    if (type === PacketType.SocketEnd) this.#ends.push(false);
    else if (type === PacketType.SocketClosed) this.#ends.push(true);
    return undefined;
  }
}
