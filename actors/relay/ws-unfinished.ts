/**
 * Bytes of WebSocket input that `ws` holds before the relay sees them (docs/RELAY.md "Bounds").
 * ws hands the relay whole messages only: a message under way (up to the port's maxPayload, some
 * 260 KiB) sits in ws's receiver, out of the FrameReader's sight. Counted here, from the same
 * bytes ws reads, by following only the frame headers (RFC 6455 §5.2), so those bytes count
 * toward the incomplete-frame budget and start the frame timeout as a TCP frame under way does.
 * It judges nothing: ws validates the frames and refuses bad ones.
 */

/** Largest frame header: 2 bytes, a 64-bit length, a mask. */
const MAX_HEADER_BYTES = 14;

/** Follows the frame headers of one WebSocket's incoming bytes. */
export class WsUnfinished {
  readonly #head = new Uint8Array(MAX_HEADER_BYTES);
  #headFilled = 0;
  /** Header bytes of the frame under way: 2 until its second byte says how many. */
  #headBytes = 2;
  #payloadBytes = 0;
  #payloadLeft = 0;
  #fin = false;
  #control = false;
  /** Bytes of the data frames (headers included) of a fragmented message not finished yet. */
  #fragmentBytes = 0;
  /** Their payload bytes. */
  #fragmentPayload = 0;

  /**
   * Bytes ws holds and has not delivered: the frame under way, and the earlier fragments of a
   * message whose final fragment has not come.
   */
  get bytes(): number {
    return this.#fragmentBytes + this.#headFilled + (this.#payloadBytes - this.#payloadLeft);
  }

  /**
   * Payload bytes of the message under way, as declared so far: its finished fragments' and the
   * length in the header of the data frame under way (ws's measure for its maxPayload).
   */
  get messageBytes(): number {
    const declared = this.#headFilled === this.#headBytes && !this.#control ? this.#payloadBytes : 0;
    return this.#fragmentPayload + declared;
  }

  /** Follows `chunk`, the next bytes read from the WebSocket's socket. */
  push(chunk: Uint8Array): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      if (this.#headFilled === this.#headBytes) {
        const n = Math.min(this.#payloadLeft, end - offset);
        this.#payloadLeft -= n;
        offset += n;
        if (this.#payloadLeft === 0) this.#endFrame();
        continue;
      }
      const take = Math.min(this.#headBytes - this.#headFilled, end - offset);
      this.#head.set(chunk.subarray(offset, offset + take), this.#headFilled);
      this.#headFilled += take;
      offset += take;
      if (this.#headFilled === 2) this.#headBytes = headerBytes(this.#head[1]);
      if (this.#headFilled < this.#headBytes) continue;
      this.#startPayload();
      if (this.#payloadLeft === 0) this.#endFrame();
    }
  }

  #startPayload(): void {
    const head = this.#head;
    this.#fin = (head[0] & 0x80) !== 0;
    this.#control = (head[0] & 0x08) !== 0;
    const length7 = head[1] & 0x7f;
    const view = new DataView(head.buffer, head.byteOffset, MAX_HEADER_BYTES);
    // A 64-bit length past 2^53 is refused by ws (close 1009) before it buffers any of it.
    const length = length7 === 126 ? view.getUint16(2) : length7 === 127 ? view.getUint32(2) * 0x1_0000_0000 + view.getUint32(6) : length7;
    this.#payloadBytes = this.#payloadLeft = length;
  }

  #endFrame(): void {
    const frameBytes = this.#headBytes + this.#payloadBytes;
    // A control frame (Ping, Pong, Close) is handled at once, even inside a fragmented message.
    if (!this.#control) {
      this.#fragmentBytes = this.#fin ? 0 : this.#fragmentBytes + frameBytes;
      this.#fragmentPayload = this.#fin ? 0 : this.#fragmentPayload + this.#payloadBytes;
    }
    this.#headFilled = 0;
    this.#headBytes = 2;
    this.#payloadBytes = this.#payloadLeft = 0;
  }
}

/** A frame header's size from its second byte: the length's extension and the mask. */
function headerBytes(second: number): number {
  const length7 = second & 0x7f;
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + ((second & 0x80) !== 0 ? 4 : 0);
}
