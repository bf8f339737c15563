/**
 * The one table of body sizes per packet type (docs/PROTOCOL.md §1, §3), and the header check
 * every receiver runs before it allocates anything for a frame. A frame's declared length is
 * judged against its type as soon as the 5-byte header is in: a Ping that claims 256 KiB is
 * refused then, not after the relay has reserved 256 KiB for it (issue 9, finding 2).
 */
import {
  CHALLENGE_BYTES,
  DATAGRAM_ADDRESSES_BYTES,
  MAX_DATAGRAM_PAYLOAD_BYTES,
  PACKET_TYPE_NAMES,
  PUBLIC_KEY_BYTES,
  PacketType,
  SIGNATURE_BYTES,
} from './constants.ts';
import { MAX_ERROR_MESSAGE_BYTES } from './encode.ts';
import { ProtocolError } from './errors.ts';

/** Smallest and largest body (bytes after the 5-byte header) of one packet type. */
export interface BodySize {
  min: number;
  /** Infinity: bounded only by the frame limit. */
  max: number;
}

function exact(bytes: number): BodySize {
  return { min: bytes, max: bytes };
}

/** Body sizes by packet type; a type missing here is unknown. */
export const BODY_SIZES: Readonly<Record<number, BodySize>> = {
  [PacketType.Hello]: exact(6),
  [PacketType.VirtualIp]: exact(18),
  [PacketType.Ping]: exact(4),
  [PacketType.Pong]: exact(4),
  // u16 code + a message the encoder cuts at MAX_ERROR_MESSAGE_BYTES (§3.5).
  [PacketType.Error]: { min: 2, max: 2 + MAX_ERROR_MESSAGE_BYTES },
  [PacketType.BindRequest]: exact(6),
  [PacketType.BindResponse]: exact(7),
  [PacketType.Unbind]: exact(2),
  [PacketType.SocketStatusRequest]: exact(16),
  [PacketType.SocketStatusResponse]: exact(5),
  [PacketType.RequestFailed]: exact(5),
  [PacketType.SocketConnectionRequest]: exact(20),
  [PacketType.SocketConnectionResponse]: exact(9),
  [PacketType.ArbitraryData]: { min: 4, max: Infinity },
  [PacketType.SocketEnd]: exact(4),
  [PacketType.SocketClosed]: exact(5),
  [PacketType.WindowUpdate]: exact(8),
  [PacketType.Challenge]: exact(CHALLENGE_BYTES),
  [PacketType.IdentityProof]: exact(PUBLIC_KEY_BYTES + SIGNATURE_BYTES),
  [PacketType.PeerKey]: exact(4 + PUBLIC_KEY_BYTES),
  [PacketType.DatagramBind]: exact(6),
  [PacketType.DatagramUnbind]: exact(2),
  // Two addresses and at most MAX_DATAGRAM_PAYLOAD_BYTES (§10): an oversize datagram is refused by its header.
  [PacketType.Datagram]: { min: DATAGRAM_ADDRESSES_BYTES, max: DATAGRAM_ADDRESSES_BYTES + MAX_DATAGRAM_PAYLOAD_BYTES },
};

/**
 * Judges a frame header: `length` is the u32 length field (type + body), `type` the type byte.
 * Returns the ProtocolError for an unknown type or a body size the type cannot have, else
 * undefined. The frame limit itself is checked earlier, on the length alone.
 */
export function checkFrameHeader(type: number, length: number): ProtocolError | undefined {
  const size = BODY_SIZES[type];
  if (size === undefined) {
    return new ProtocolError('ERR_UNKNOWN_PACKET_TYPE', `unknown packet type 0x${type.toString(16).padStart(2, '0')}`);
  }
  const body = length - 1;
  if (body < size.min || body > size.max) {
    const want = size.min === size.max ? `${size.min}` : size.max === Infinity ? `at least ${size.min}` : `${size.min}..${size.max}`;
    return new ProtocolError('ERR_MALFORMED_PACKET', `${PACKET_TYPE_NAMES[type]} body is ${body} bytes, expected ${want}`);
  }
  return undefined;
}

