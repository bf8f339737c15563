/**
 * The error hierarchy shared by every layer. Each error has a stable string `code`
 * (documented in docs/ERRORS.md) that scripts may match on; messages are for people.
 */
export class AlphanetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export type ProtocolErrorCode =
  | 'ERR_FRAME_TOO_LARGE'
  | 'ERR_FRAME_EMPTY'
  | 'ERR_UNKNOWN_PACKET_TYPE'
  | 'ERR_MALFORMED_PACKET';

/** Bytes from a peer that do not form a valid frame or packet. */
export class ProtocolError extends AlphanetError {
  declare readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string) {
    super(code, message);
  }
}
