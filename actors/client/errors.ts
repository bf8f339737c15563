/**
 * The client's typed errors. Each has a stable `code` (docs/ERRORS.md) that scripts match on;
 * the message says what happened in words.
 */
import { AlphanetError } from '../../protocol/errors.ts';

export type ClientErrorCode =
  | 'ERR_RELAY_UNREACHABLE'
  | 'ERR_RELAY_REJECTED'
  | 'ERR_RELAY_LOST'
  | 'ERR_RELAY_FINGERPRINT_CHANGED'
  | 'ERR_RELAY_FINGERPRINT_MISMATCH'
  | 'ERR_TARGET_OFFLINE'
  | 'ERR_NOT_LISTENING'
  | 'ERR_CONNECTION_REFUSED'
  | 'ERR_TIMEOUT'
  | 'ERR_CLOSED_BY_PEER'
  | 'ERR_CLOSED_BY_RELAY'
  | 'ERR_ADDRESS_IN_USE'
  | 'ERR_SOCKET_LIMIT'
  | 'ERR_NO_FREE_PORT'
  | 'ERR_REQUEST_FAILED'
  | 'ERR_SOCKET_STATE'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_CLIENT_CLOSED'
  | 'ERR_IDENTITY'
  | 'ERR_E2E_INTEGRITY'
  | 'ERR_E2E_TRUNCATED'
  | 'ERR_E2E_HANDSHAKE'
  | 'ERR_E2E_PEER_KEY'
  | 'ERR_E2E_PEER_KEY_CHANGED'
  | 'ERR_E2E_MISMATCH'
  | 'ERR_UNSUPPORTED'
  | 'ERR_DATAGRAM_TOO_LARGE';

/** Any error raised by the client API. */
export class ClientError extends AlphanetError {
  declare readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** TCP to the relay failed, or the relay did not answer Hello in time. */
export class RelayUnreachableError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RELAY_UNREACHABLE', message, options);
  }
}

/** The relay sent a fatal Error packet (docs/PROTOCOL.md §9); `relayCode` is its number. */
export class RelayRejectedError extends ClientError {
  readonly relayCode: number;
  constructor(relayCode: number, message: string) {
    super('ERR_RELAY_REJECTED', message);
    this.relayCode = relayCode;
  }
}

/** The connection to the relay ended (closed, silent past the keepalive timeout, or broken). */
export class RelayLostError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RELAY_LOST', message, options);
  }
}

/** No client of the target virtual IP is connected to the relay. */
export class TargetOfflineError extends ClientError {
  constructor(message: string) {
    super('ERR_TARGET_OFFLINE', message);
  }
}

/** The target is online but nothing listens at the port; `reason` says which case. */
export class NotListeningError extends ClientError {
  readonly reason: 'not-bound' | 'not-listening';
  constructor(reason: 'not-bound' | 'not-listening', message: string) {
    super('ERR_NOT_LISTENING', message);
    this.reason = reason;
  }
}

/** The target's listener denied the connection. */
export class ConnectionRefusedError extends ClientError {
  constructor(message: string) {
    super('ERR_CONNECTION_REFUSED', message);
  }
}

/** A request got no answer in time (locally, or the relay's own timeout for the target). */
export class TimeoutError extends ClientError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

/** The other end closed the connection, or its client left. */
export class ClosedByPeerError extends ClientError {
  constructor(message: string) {
    super('ERR_CLOSED_BY_PEER', message);
  }
}

/** The relay closed the connection; `reason` is its SocketClosed reason name (docs/PROTOCOL.md §8). */
export class ClosedByRelayError extends ClientError {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('ERR_CLOSED_BY_RELAY', message);
    this.reason = reason;
  }
}

/**
 * The relay's TLS key is not the one trusted for its address: `ERR_RELAY_FINGERPRINT_CHANGED`
 * when it differs from the pin in the known-relays file (trust on first use), and
 * `ERR_RELAY_FINGERPRINT_MISMATCH` when it differs from the fingerprint asked for explicitly.
 * Nothing was sent to the relay. The message says how to accept a key replaced on purpose.
 */
export class RelayFingerprintError extends ClientError {
  /** The fingerprint the client trusted for this relay. */
  readonly expected: string;
  /** The fingerprint the relay presented. */
  readonly actual: string;
  /** The known-relays file holding the pin (for ERR_RELAY_FINGERPRINT_CHANGED). */
  readonly file: string | undefined;
  constructor(code: 'ERR_RELAY_FINGERPRINT_CHANGED' | 'ERR_RELAY_FINGERPRINT_MISMATCH', message: string, details: { expected: string; actual: string; file?: string }) {
    super(code, message);
    this.expected = details.expected;
    this.actual = details.actual;
    this.file = details.file;
  }
}
