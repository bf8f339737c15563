/**
 * Where the fields of a frame sit, and the readers for them: the one place that knows a
 * connection id starts at byte 5 and a WindowUpdate's count at byte 9 (docs/PROTOCOL.md §1,
 * §3). The data path reads these in place, without decoding the whole packet, so they are
 * plain functions over a byte array and an offset: no DataView, no allocation.
 */
import { FRAME_HEADER_BYTES } from './constants.ts';

/** Bytes of the u32 length field that starts every frame. */
export const FRAME_LENGTH_BYTES = 4;
/** Offset of the type byte, right after the length field. */
export const FRAME_TYPE_OFFSET = FRAME_LENGTH_BYTES;
/** Offset of the u32 connection id in ArbitraryData, SocketEnd, SocketClosed and WindowUpdate. */
export const CONNECTION_ID_OFFSET = FRAME_HEADER_BYTES;
/** Bytes of a connection id. */
export const CONNECTION_ID_BYTES = 4;
/** ArbitraryData's head: frame header + connection id (9 bytes); the payload starts here (§3). */
export const DATA_FRAME_HEAD_BYTES = FRAME_HEADER_BYTES + CONNECTION_ID_BYTES;
/** The name encode.ts gave DATA_FRAME_HEAD_BYTES first; kept for its callers, the same number. */
export const ARBITRARY_DATA_HEADER_BYTES = DATA_FRAME_HEAD_BYTES;
/** Offset of WindowUpdate's u32 byte count, after its connection id (§3). */
export const WINDOW_UPDATE_BYTES_OFFSET = DATA_FRAME_HEAD_BYTES;
/** A whole WindowUpdate frame: head + u32 byte count (13 bytes). */
export const WINDOW_UPDATE_FRAME_BYTES = WINDOW_UPDATE_BYTES_OFFSET + 4;

/** The big-endian u32 at `offset` (network order, as every number on the wire). */
export function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

/** A frame's length field: type byte + body, not counting the 4 bytes of the field itself. */
export function readFrameLength(frame: Uint8Array): number {
  return readU32(frame, 0);
}

/** The connection id of an ArbitraryData / SocketEnd / SocketClosed / WindowUpdate frame, read in place. */
export function readConnectionId(frame: Uint8Array): number {
  return readU32(frame, CONNECTION_ID_OFFSET);
}

/** The credit a WindowUpdate frame grants, read in place (the frame must be WINDOW_UPDATE_FRAME_BYTES long). */
export function readWindowUpdateBytes(frame: Uint8Array): number {
  return readU32(frame, WINDOW_UPDATE_BYTES_OFFSET);
}

// Datagram (§10): frame header, source address, destination address, payload.
/** Offset of a Datagram's u32 source ip (the relay overwrites it in place: the stamp). */
export const DATAGRAM_SOURCE_IP_OFFSET = FRAME_HEADER_BYTES;
/** Offset of a Datagram's u16 source port. */
export const DATAGRAM_SOURCE_PORT_OFFSET = FRAME_HEADER_BYTES + 4;
/** Offset of a Datagram's u32 destination ip. */
export const DATAGRAM_DESTINATION_IP_OFFSET = FRAME_HEADER_BYTES + 6;
/** Offset of a Datagram's u16 destination port. */
export const DATAGRAM_DESTINATION_PORT_OFFSET = FRAME_HEADER_BYTES + 10;
/** Offset of a Datagram's payload: 17 bytes of head. */
export const DATAGRAM_PAYLOAD_OFFSET = FRAME_HEADER_BYTES + 12;

/** The big-endian u16 at `offset`. */
export function readU16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

/** Writes `value` as a big-endian u32 at `offset` (the relay's source stamp, in place). */
export function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}
