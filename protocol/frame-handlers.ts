/**
 * What a FrameReader (frame-reader.ts) is given: the handlers, whose set chooses how bodies are
 * delivered, and its options.
 */

/** Whole frames: every frame, ArbitraryData included, is handed to `frame`. */
export interface WholeFrameHandlers {
  /**
   * A whole frame, header included (body = frame.subarray(5)); may share memory with the chunk
   * pushed, so copy it to keep it past the push. Return false to hold it: it counts as not
   * delivered, and it is delivered again by `resume()`.
   */
  frame(type: number, frame: Uint8Array): boolean | void;
}

/** Data pieces: an ArbitraryData frame spanning chunks goes to `dataPieces`, the rest to `frame`. */
export interface DataPiecesHandlers extends WholeFrameHandlers {
  /**
   * An ArbitraryData frame that arrived in pieces: concatenated, `pieces` are the whole frame
   * (header included), `frameBytes` long. Return false to hold it, as for `frame`.
   */
  dataPieces(connectionId: number, frameBytes: number, pieces: Uint8Array[]): boolean | void;
}

/** Payload stream: ArbitraryData payloads go to `payload` as they arrive, every other frame to `frame`. */
export interface PayloadStreamHandlers extends WholeFrameHandlers {
  /**
   * The next bytes of an ArbitraryData frame's payload, a slice of a chunk pushed (a Buffer if
   * that was a Buffer); a payload may come in several calls, an empty payload in none. Cannot
   * be held: the bytes are streamed.
   */
  payload(connectionId: number, payload: Uint8Array): void;
}

/** The handlers given choose the delivery: with `dataPieces`, data pieces; with `payload`, payload stream; else whole frames. */
export type FrameReaderHandlers = WholeFrameHandlers | DataPiecesHandlers | PayloadStreamHandlers;

export interface FrameReaderOptions {
  /**
   * Largest frame accepted (the length field's value: type byte + body).
   * @default DEFAULT_MAX_FRAME_BYTES (256 KiB)
   */
  maxFrameBytes?: number;
}
