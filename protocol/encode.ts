/**
 * Pure encoders: packet object in, one complete frame out (u32 length, u8 type, body).
 * Layouts are in docs/PROTOCOL.md §3; every multi-byte integer is big-endian.
 */
import {
  CHALLENGE_BYTES,
  DATAGRAM_ADDRESSES_BYTES,
  FRAME_HEADER_BYTES,
  HELLO_MAGIC,
  PUBLIC_KEY_BYTES,
  PacketType,
  SIGNATURE_BYTES,
} from './constants.ts';
import { ARBITRARY_DATA_HEADER_BYTES, DATAGRAM_PAYLOAD_OFFSET } from './fields.ts';
import type { Packet } from './packets.ts';
import type { WireAddress } from './address.ts';

const textEncoder = new TextEncoder();

/** Longest Error message we put on the wire, in bytes; longer ones are cut. */
export const MAX_ERROR_MESSAGE_BYTES = 512;

function frame(type: number, bodyBytes: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + bodyBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 1 + bodyBytes);
  bytes[4] = type;
  return { bytes, view };
}

function putAddress(view: DataView, offset: number, address: WireAddress): void {
  view.setUint32(offset, address.ip >>> 0);
  view.setUint16(offset + 4, address.port);
}

/** Encodes any packet as one frame. */
export function encodePacket(packet: Packet): Uint8Array {
  const H = FRAME_HEADER_BYTES;
  switch (packet.type) {
    case PacketType.Hello: {
      const { bytes, view } = frame(packet.type, 6);
      view.setUint32(H, HELLO_MAGIC);
      view.setUint16(H + 4, packet.version);
      return bytes;
    }
    case PacketType.VirtualIp: {
      const { bytes, view } = frame(packet.type, 18);
      view.setUint16(H, packet.version);
      view.setUint32(H + 2, packet.ip >>> 0);
      view.setUint32(H + 6, packet.keepaliveIntervalMs);
      view.setUint32(H + 10, packet.keepaliveTimeoutMs);
      view.setUint32(H + 14, packet.maxFrameBytes);
      return bytes;
    }
    case PacketType.Ping:
    case PacketType.Pong: {
      const { bytes, view } = frame(packet.type, 4);
      view.setUint32(H, packet.nonce >>> 0);
      return bytes;
    }
    case PacketType.Error: {
      let message = textEncoder.encode(packet.message);
      if (message.length > MAX_ERROR_MESSAGE_BYTES) {
        // Cut at a character boundary: a cut inside a multi-byte character would make the
        // message invalid UTF-8, which the receiver must refuse (decode.ts). A byte 10xxxxxx
        // continues the character before it, so back up to that character's first byte.
        let end = MAX_ERROR_MESSAGE_BYTES;
        while (end > 0 && (message[end] & 0xc0) === 0x80) end--;
        message = message.subarray(0, end);
      }
      const { bytes, view } = frame(packet.type, 2 + message.length);
      view.setUint16(H, packet.code);
      bytes.set(message, H + 2);
      return bytes;
    }
    case PacketType.BindRequest: {
      const { bytes, view } = frame(packet.type, 6);
      view.setUint32(H, packet.requestId >>> 0);
      view.setUint16(H + 4, packet.port);
      return bytes;
    }
    case PacketType.BindResponse: {
      const { bytes, view } = frame(packet.type, 7);
      view.setUint32(H, packet.requestId >>> 0);
      view.setUint8(H + 4, packet.status);
      view.setUint16(H + 5, packet.port);
      return bytes;
    }
    case PacketType.Unbind: {
      const { bytes, view } = frame(packet.type, 2);
      view.setUint16(H, packet.port);
      return bytes;
    }
    case PacketType.SocketStatusRequest: {
      const { bytes, view } = frame(packet.type, 16);
      view.setUint32(H, packet.requestId >>> 0);
      putAddress(view, H + 4, packet.source);
      putAddress(view, H + 10, packet.destination);
      return bytes;
    }
    case PacketType.SocketStatusResponse:
    case PacketType.RequestFailed: {
      const { bytes, view } = frame(packet.type, 5);
      view.setUint32(H, packet.requestId >>> 0);
      view.setUint8(H + 4, packet.type === PacketType.RequestFailed ? packet.reason : packet.status);
      return bytes;
    }
    case PacketType.SocketConnectionRequest: {
      const { bytes, view } = frame(packet.type, 20);
      view.setUint32(H, packet.requestId >>> 0);
      view.setUint32(H + 4, packet.connectionId >>> 0);
      putAddress(view, H + 8, packet.source);
      putAddress(view, H + 14, packet.destination);
      return bytes;
    }
    case PacketType.SocketConnectionResponse: {
      const { bytes, view } = frame(packet.type, 9);
      view.setUint32(H, packet.requestId >>> 0);
      view.setUint32(H + 4, packet.connectionId >>> 0);
      view.setUint8(H + 8, packet.status);
      return bytes;
    }
    case PacketType.ArbitraryData:
      return encodeArbitraryData(packet.connectionId, packet.data);
    case PacketType.SocketEnd: {
      const { bytes, view } = frame(packet.type, 4);
      view.setUint32(H, packet.connectionId >>> 0);
      return bytes;
    }
    case PacketType.SocketClosed: {
      const { bytes, view } = frame(packet.type, 5);
      view.setUint32(H, packet.connectionId >>> 0);
      view.setUint8(H + 4, packet.reason);
      return bytes;
    }
    case PacketType.WindowUpdate: {
      const { bytes, view } = frame(packet.type, 8);
      view.setUint32(H, packet.connectionId >>> 0);
      view.setUint32(H + 4, packet.bytes >>> 0);
      return bytes;
    }
    case PacketType.Challenge: {
      const { bytes } = frame(packet.type, CHALLENGE_BYTES);
      bytes.set(fixed(packet.nonce, CHALLENGE_BYTES, 'Challenge nonce'), H);
      return bytes;
    }
    case PacketType.IdentityProof: {
      const { bytes } = frame(packet.type, PUBLIC_KEY_BYTES + SIGNATURE_BYTES);
      bytes.set(fixed(packet.publicKey, PUBLIC_KEY_BYTES, 'IdentityProof public key'), H);
      bytes.set(fixed(packet.signature, SIGNATURE_BYTES, 'IdentityProof signature'), H + PUBLIC_KEY_BYTES);
      return bytes;
    }
    case PacketType.PeerKey: {
      const { bytes, view } = frame(packet.type, 4 + PUBLIC_KEY_BYTES);
      view.setUint32(H, packet.connectionId >>> 0);
      bytes.set(fixed(packet.publicKey, PUBLIC_KEY_BYTES, 'PeerKey public key'), H + 4);
      return bytes;
    }
    case PacketType.DatagramBind: {
      const { bytes, view } = frame(packet.type, 6);
      view.setUint32(H, packet.requestId >>> 0);
      view.setUint16(H + 4, packet.port);
      return bytes;
    }
    case PacketType.DatagramUnbind: {
      const { bytes, view } = frame(packet.type, 2);
      view.setUint16(H, packet.port);
      return bytes;
    }
    case PacketType.Datagram:
      return encodeDatagram(packet.source, packet.destination, packet.payload);
  }
}

/** `bytes` when it is exactly `size` long; a programming error otherwise (the wire sizes are fixed). */
function fixed(bytes: Uint8Array, size: number, what: string): Uint8Array {
  if (bytes.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${bytes.length}`);
  return bytes;
}

/**
 * The 9-byte head of an ArbitraryData frame carrying `payloadBytes` bytes, so a large payload
 * can be written after it without being copied.
 */
export function encodeArbitraryDataHeader(connectionId: number, payloadBytes: number): Uint8Array {
  const head = new Uint8Array(ARBITRARY_DATA_HEADER_BYTES);
  writeArbitraryDataHeader(head, 0, connectionId, payloadBytes);
  return head;
}

/** Writes an ArbitraryData head into `target` at `offset` (for callers that batch frames). */
export function writeArbitraryDataHeader(
  target: Uint8Array,
  offset: number,
  connectionId: number,
  payloadBytes: number,
): void {
  const length = 5 + payloadBytes;
  target[offset] = length >>> 24;
  target[offset + 1] = length >>> 16;
  target[offset + 2] = length >>> 8;
  target[offset + 3] = length;
  target[offset + 4] = PacketType.ArbitraryData;
  target[offset + 5] = connectionId >>> 24;
  target[offset + 6] = connectionId >>> 16;
  target[offset + 7] = connectionId >>> 8;
  target[offset + 8] = connectionId;
}

/** One ArbitraryData frame with the payload copied in. */
export function encodeArbitraryData(connectionId: number, data: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(ARBITRARY_DATA_HEADER_BYTES + data.length);
  writeArbitraryDataHeader(bytes, 0, connectionId, data.length);
  bytes.set(data, ARBITRARY_DATA_HEADER_BYTES);
  return bytes;
}

/**
 * One Datagram frame (§10) with the payload copied in: the one allocation of a send. Its length
 * is not checked here; the sender checks it against MAX_DATAGRAM_PAYLOAD_BYTES first.
 */
export function encodeDatagram(source: WireAddress, destination: WireAddress, payload: Uint8Array): Uint8Array {
  const { bytes, view } = frame(PacketType.Datagram, DATAGRAM_ADDRESSES_BYTES + payload.length);
  putAddress(view, FRAME_HEADER_BYTES, source);
  putAddress(view, FRAME_HEADER_BYTES + 6, destination);
  bytes.set(payload, DATAGRAM_PAYLOAD_OFFSET);
  return bytes;
}
