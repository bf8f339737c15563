/**
 * How end-to-end encryption splits the raw connection's byte stream into messages
 * (docs/SECURITY.md "Records"). The raw connection is a byte stream: a send may arrive split over
 * several frames, or several sends in one, so every message carries its length. A record is a
 * 4-byte head, the record type (1 byte) and the body's length (24 bits, big-endian), then the
 * body: a Noise handshake message, or a sealed message (ciphertext and 16-byte tag) whose
 * associated data is the head, so a changed type or length fails authentication too.
 *
 * Pure (no I/O): the reader takes chunks of any size and hands back whole records.
 */

/** Record head: type (1 byte) and body length (3 bytes, big-endian). */
export const RECORD_HEAD_BYTES = 4;

export const RecordType = {
  /** A Noise handshake message (IK: one each way). */
  Handshake: 1,
  /** Sealed application bytes. */
  Data: 2,
  /** Sealed and empty: the sender's clean end (half-close); a stream that stops without it was cut. */
  End: 3,
  /**
   * Sealed and empty, the connector's first sealed message, sent as soon as it read the
   * handshake's reply: key confirmation. In Noise IK the acceptor otherwise has no proof that the
   * connector is live (a recorded first message replayed by a relay completes its side), so it
   * hands the connection on only once this opens (handshake.ts).
   */
  Confirm: 4,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Plaintext per sealed message: one 64 KiB send() is one message and one relay frame. */
export const MAX_RECORD_PLAINTEXT_BYTES = 64 * 1024;

/** AEAD tag bytes at the end of a sealed body. */
export const TAG_BYTES = 16;

/** Largest body accepted: a full sealed message. Anything longer is not from the peer. */
export const MAX_RECORD_BODY_BYTES = MAX_RECORD_PLAINTEXT_BYTES + TAG_BYTES;

/** Bytes of a sealed end marker on the wire (what a path that drops it drops). */
export const END_RECORD_BYTES = RECORD_HEAD_BYTES + TAG_BYTES;

/** The head of a record of `type` with a body of `bodyBytes`, written at `offset` of `out`. */
export function writeRecordHead(out: Uint8Array, offset: number, type: RecordType, bodyBytes: number): void {
  out[offset] = type;
  out[offset + 1] = (bodyBytes >>> 16) & 0xff;
  out[offset + 2] = (bodyBytes >>> 8) & 0xff;
  out[offset + 3] = bodyBytes & 0xff;
}

/** A whole handshake record around `message`. */
export function handshakeRecord(message: Uint8Array): Uint8Array {
  const record = new Uint8Array(RECORD_HEAD_BYTES + message.length);
  writeRecordHead(record, 0, RecordType.Handshake, message.length);
  record.set(message, RECORD_HEAD_BYTES);
  return record;
}

/** One record as read: its head (the sealed body's associated data) and its body, in pieces. */
export interface RawRecord {
  type: number;
  head: Uint8Array;
  /** The body as views of the chunks it arrived in (one, usually; never copied). */
  pieces: Uint8Array[];
  bodyBytes: number;
}

/** A record's body in one piece (a copy only when it arrived in several). */
export function joinPieces(pieces: readonly Uint8Array[]): Uint8Array {
  return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
}

/** The bytes cannot be records from the peer: a length over the limit, or an unknown type. */
export class RecordFormatError extends Error {
  override name = 'RecordFormatError';
}

/**
 * Cuts the raw byte stream into records. A record's body is handed back as views of the chunks
 * it arrived in: a 64 KiB record split over two relay frames or TCP reads is opened from both
 * pieces, never copied together first.
 */
export class RecordReader {
  #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already taken. */
  #offset = 0;
  #bytes = 0;

  /** Raw bytes received and not yet handed back as records. */
  get pendingBytes(): number {
    return this.#bytes;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** The next whole record, or undefined until more bytes come; throws RecordFormatError. */
  next(): RawRecord | undefined {
    if (this.#bytes < RECORD_HEAD_BYTES) return undefined;
    const head = this.#peekHead();
    const type = head[0];
    const bodyBytes = (head[1] << 16) | (head[2] << 8) | head[3];
    if (type < RecordType.Handshake || type > RecordType.Confirm) throw new RecordFormatError(`record type ${type}`);
    if (bodyBytes > MAX_RECORD_BODY_BYTES) throw new RecordFormatError(`a record of ${bodyBytes} bytes (the most is ${MAX_RECORD_BODY_BYTES})`);
    if (this.#bytes < RECORD_HEAD_BYTES + bodyBytes) return undefined;
    this.#take(RECORD_HEAD_BYTES);
    return { type, head, pieces: this.#take(bodyBytes), bodyBytes };
  }

  #peekHead(): Uint8Array {
    const first = this.#chunks[0];
    if (first.length - this.#offset >= RECORD_HEAD_BYTES) return first.subarray(this.#offset, this.#offset + RECORD_HEAD_BYTES);
    const head = new Uint8Array(RECORD_HEAD_BYTES);
    let filled = 0;
    for (let i = 0, offset = this.#offset; filled < RECORD_HEAD_BYTES; i++, offset = 0) {
      const piece = this.#chunks[i].subarray(offset, offset + RECORD_HEAD_BYTES - filled);
      head.set(piece, filled);
      filled += piece.length;
    }
    return head;
  }

  /** Takes `n` bytes (n ≤ pendingBytes) as views of the chunks they lie in. */
  #take(n: number): Uint8Array[] {
    this.#bytes -= n;
    const pieces: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      const chunk = this.#chunks[0];
      const piece = chunk.subarray(this.#offset, this.#offset + left);
      pieces.push(piece);
      left -= piece.length;
      this.#offset += piece.length;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return pieces;
  }
}
