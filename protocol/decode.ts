/**
 * Turns one frame (as handed out by FrameReader or FrameDecoder) into a typed packet. Structural checks
 * only: body length per type, the Hello magic, UTF-8 in Error. Whether a status or reason
 * number is known is the receiving layer's business, so newer peers can add values.
 */
import { FRAME_HEADER_BYTES, HELLO_MAGIC, PUBLIC_KEY_BYTES, PacketType } from './constants.ts';
import { checkFrameHeader } from './body-sizes.ts';
import { ProtocolError } from './errors.ts';
import { DATAGRAM_PAYLOAD_OFFSET, DATA_FRAME_HEAD_BYTES } from './fields.ts';
import type { Packet } from './packets.ts';
import type { WireAddress } from './address.ts';

// ignoreBOM: a message that starts with U+FEFF keeps it; by default TextDecoder would drop it,
// so the text received would differ from the text sent.
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function address(view: DataView, offset: number): WireAddress {
  return { ip: view.getUint32(offset), port: view.getUint16(offset + 4) };
}

/**
 * Decodes a whole frame (header included). Returns the packet, or a ProtocolError saying what
 * is wrong. ArbitraryData's `data` is a view into `frame`, not a copy.
 */
export function decodeFrame(frame: Uint8Array): Packet | ProtocolError {
  if (frame.length < FRAME_HEADER_BYTES) {
    return new ProtocolError('ERR_MALFORMED_PACKET', `frame of ${frame.length} bytes is shorter than its header`);
  }
  const type = frame[4];
  const bodyBytes = frame.length - FRAME_HEADER_BYTES;
  const invalid = checkFrameHeader(type, bodyBytes + 1);
  if (invalid !== undefined) return invalid;
  const view = new DataView(frame.buffer, frame.byteOffset + FRAME_HEADER_BYTES, bodyBytes);
  switch (type) {
    case PacketType.Hello: {
      const magic = view.getUint32(0);
      if (magic !== HELLO_MAGIC) {
        return new ProtocolError('ERR_MALFORMED_PACKET', 'Hello does not start with the AlphaNET magic "ANET"');
      }
      return { type, version: view.getUint16(4) };
    }
    case PacketType.VirtualIp:
      return {
        type,
        version: view.getUint16(0),
        ip: view.getUint32(2),
        keepaliveIntervalMs: view.getUint32(6),
        keepaliveTimeoutMs: view.getUint32(10),
        maxFrameBytes: view.getUint32(14),
      };
    case PacketType.Ping:
    case PacketType.Pong:
      return { type, nonce: view.getUint32(0) };
    case PacketType.Error: {
      let message: string;
      try {
        message = textDecoder.decode(frame.subarray(FRAME_HEADER_BYTES + 2));
      } catch {
        return new ProtocolError('ERR_MALFORMED_PACKET', 'Error message is not valid UTF-8');
      }
      return { type, code: view.getUint16(0), message };
    }
    case PacketType.BindRequest:
      return { type, requestId: view.getUint32(0), port: view.getUint16(4) };
    case PacketType.BindResponse:
      return { type, requestId: view.getUint32(0), status: view.getUint8(4), port: view.getUint16(5) };
    case PacketType.Unbind:
      return { type, port: view.getUint16(0) };
    case PacketType.SocketStatusRequest:
      return { type, requestId: view.getUint32(0), source: address(view, 4), destination: address(view, 10) };
    case PacketType.SocketStatusResponse:
      return { type, requestId: view.getUint32(0), status: view.getUint8(4) };
    case PacketType.RequestFailed:
      return { type, requestId: view.getUint32(0), reason: view.getUint8(4) };
    case PacketType.SocketConnectionRequest:
      return {
        type,
        requestId: view.getUint32(0),
        connectionId: view.getUint32(4),
        source: address(view, 8),
        destination: address(view, 14),
      };
    case PacketType.SocketConnectionResponse:
      return { type, requestId: view.getUint32(0), connectionId: view.getUint32(4), status: view.getUint8(8) };
    case PacketType.ArbitraryData:
      return { type, connectionId: view.getUint32(0), data: frame.subarray(DATA_FRAME_HEAD_BYTES) };
    case PacketType.SocketEnd:
      return { type, connectionId: view.getUint32(0) };
    case PacketType.SocketClosed:
      return { type, connectionId: view.getUint32(0), reason: view.getUint8(4) };
    case PacketType.WindowUpdate:
      return { type, connectionId: view.getUint32(0), bytes: view.getUint32(4) };
    // Keys, nonces and signatures are copied: they outlive the read buffer.
    case PacketType.Challenge:
      return { type, nonce: frame.slice(FRAME_HEADER_BYTES) };
    case PacketType.IdentityProof:
      return {
        type,
        publicKey: frame.slice(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + PUBLIC_KEY_BYTES),
        signature: frame.slice(FRAME_HEADER_BYTES + PUBLIC_KEY_BYTES),
      };
    case PacketType.PeerKey:
      return { type, connectionId: view.getUint32(0), publicKey: frame.slice(FRAME_HEADER_BYTES + 4) };
    case PacketType.DatagramBind:
      return { type, requestId: view.getUint32(0), port: view.getUint16(4) };
    case PacketType.DatagramUnbind:
      return { type, port: view.getUint16(0) };
    case PacketType.Datagram:
      return { type, source: address(view, 0), destination: address(view, 6), payload: frame.subarray(DATAGRAM_PAYLOAD_OFFSET) };
  }
  /* c8 ignore next */
  return new ProtocolError('ERR_UNKNOWN_PACKET_TYPE', `unknown packet type ${type}`);
}
