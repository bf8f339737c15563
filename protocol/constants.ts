/**
 * The one table of packet types, status codes and reason codes of the AlphaNET wire
 * protocol. Every number here is on the wire: never renumber, only append.
 * docs/PROTOCOL.md documents each one byte by byte.
 */

/** Protocol version exchanged in Hello and VirtualIP (docs/PROTOCOL.md §2). */
export const PROTOCOL_VERSION = 1;

/**
 * Hello's version when the client will prove an identity key (docs/PROTOCOL.md §2a): the relay
 * answers Challenge, and may send PeerKey. A version-1 client never hears either packet.
 */
export const IDENTITY_PROTOCOL_VERSION = 2;

/** Bytes of a Challenge's random nonce, of an Ed25519 public key, and of an Ed25519 signature. */
export const CHALLENGE_BYTES = 32;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;

/**
 * What an IdentityProof signs before the challenge (§2a): a context string, so a signature made
 * for AlphaNET can be taken for nothing else that key signs.
 */
export const IDENTITY_PROOF_CONTEXT = 'AlphaNET identity proof v1\0';

/** "ANET" — first four bytes of every Hello, so a stray HTTP client is refused at once. */
export const HELLO_MAGIC = 0x414e4554;

/** Bytes before a frame's body: u32 length + u8 type. */
export const FRAME_HEADER_BYTES = 5;

/** Default largest frame (type + body) a peer may send, in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024;

/** Smallest maximum frame size any peer may announce: must hold every control packet. */
export const MIN_MAX_FRAME_BYTES = 1024;

/**
 * Per-connection flow-control window, in bytes of ArbitraryData payload, that each end grants
 * the other when a socket connection is accepted (docs/PROTOCOL.md §6). A sender may have at
 * most this many unacknowledged payload bytes in flight; WindowUpdate grants more.
 */
export const INITIAL_WINDOW_BYTES = 1024 * 1024;

/**
 * Largest credit a receiver may grant one direction of a connection (docs/PROTOCOL.md §7): it
 * grows its window from INITIAL_WINDOW_BYTES up to this when the sender is window-limited, so
 * one connection can fill a long link (16 MiB covers 100 MB/s at 160 ms round trip). Credit
 * above it is a FlowControlViolation.
 */
export const MAX_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * Largest Datagram payload, in bytes (docs/PROTOCOL.md §10). 8 KiB holds what games put in one
 * UDP datagram in practice (most stay under the ~1,400-byte path MTU; older engines and voice
 * send a few KiB and let IP fragment it), so a real UDP program carried by `--udp` tunnels is
 * not cut off, while the relay's 64 KiB congestion threshold still holds eight of the largest.
 * A larger payload is a protocol error (MalformedFrame), not a silent cut.
 */
export const MAX_DATAGRAM_PAYLOAD_BYTES = 8 * 1024;

/** Datagram's head before the payload: u32 source ip, u16 source port, u32 destination ip, u16 destination port. */
export const DATAGRAM_ADDRESSES_BYTES = 12;

export const PacketType = {
  Hello: 0x01,
  VirtualIp: 0x02,
  Ping: 0x03,
  Pong: 0x04,
  Error: 0x05,
  BindRequest: 0x10,
  BindResponse: 0x11,
  Unbind: 0x12,
  SocketStatusRequest: 0x20,
  SocketStatusResponse: 0x21,
  RequestFailed: 0x22,
  SocketConnectionRequest: 0x23,
  SocketConnectionResponse: 0x24,
  ArbitraryData: 0x30,
  SocketEnd: 0x31,
  SocketClosed: 0x32,
  WindowUpdate: 0x33,
  // Datagrams (docs/PROTOCOL.md §10): their own port space, like UDP beside TCP.
  DatagramBind: 0x34,
  DatagramUnbind: 0x35,
  Datagram: 0x36,
  // §2a identity (protocol version 2). 0x40–0x42, clear of the datagram types 0x34–0x36.
  Challenge: 0x40,
  IdentityProof: 0x41,
  PeerKey: 0x42,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** Names by number, for logs and errors. */
export const PACKET_TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(PacketType).map(([name, value]) => [value, name]),
);

/** BindResponse.status */
export const BindStatus = {
  Ok: 0,
  AddressInUse: 1,
  LimitReached: 2,
  NoFreePort: 3,
} as const;
export type BindStatus = (typeof BindStatus)[keyof typeof BindStatus];

/** SocketStatusResponse.status: what the target host has at the requested port. */
export const SocketStatus = {
  Listening: 0,
  NotBound: 1,
  NotListening: 2,
} as const;
export type SocketStatus = (typeof SocketStatus)[keyof typeof SocketStatus];

/** SocketConnectionResponse.status */
export const ConnectionStatus = {
  Accepted: 0,
  Denied: 1,
  NotListening: 2,
} as const;
export type ConnectionStatus = (typeof ConnectionStatus)[keyof typeof ConnectionStatus];

/** RequestFailed.reason: why the relay could not carry a request through. */
export const FailureReason = {
  Offline: 1,
  Timeout: 2,
  LimitReached: 3,
  InvalidRequest: 4,
  TargetDisconnected: 5,
  NotBound: 6,
} as const;
export type FailureReason = (typeof FailureReason)[keyof typeof FailureReason];

/** SocketClosed.reason: why a socket connection ended. */
export const CloseReason = {
  Normal: 0,
  PeerDisconnected: 1,
  IdleTimeout: 2,
  RelayShutdown: 3,
  ProtocolViolation: 4,
  FlowControlViolation: 5,
  Error: 6,
  /**
   * End-to-end encryption (docs/SECURITY.md): the end that sends one of these found the peer's
   * records failed authentication (7), or its data ended without its sealed end marker (8), or that one
   * end encrypts and the other does not (9). The relay passes them on unchanged, so both ends
   * fail with the same distinct error.
   */
  E2eIntegrity: 7,
  E2eTruncated: 8,
  E2eMismatch: 9,
} as const;
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

/** Error.code: a fatal condition; the sender closes the TCP connection after the packet. */
export const ErrorCode = {
  UnsupportedVersion: 1,
  MalformedFrame: 2,
  FrameTooLarge: 3,
  UnknownPacketType: 4,
  HelloTimeout: 5,
  UnexpectedPacket: 6,
  KeepaliveTimeout: 7,
  TooManyClients: 8,
  RelayShuttingDown: 9,
  StoreFailure: 10,
  AddressSpaceExhausted: 11,
  TooManyPendingRequests: 12,
  TooManySockets: 13,
  Internal: 14,
  SlowConsumer: 15,
  FrameTimeout: 16,
  IdentityRequired: 17,
  BadIdentityProof: 18,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

function invert(table: Record<string, number>): Readonly<Record<number, string>> {
  return Object.fromEntries(Object.entries(table).map(([name, value]) => [value, name]));
}

export const ERROR_CODE_NAMES = invert(ErrorCode);
export const CLOSE_REASON_NAMES = invert(CloseReason);
export const FAILURE_REASON_NAMES = invert(FailureReason);
export const SOCKET_STATUS_NAMES = invert(SocketStatus);
export const CONNECTION_STATUS_NAMES = invert(ConnectionStatus);
export const BIND_STATUS_NAMES = invert(BindStatus);
