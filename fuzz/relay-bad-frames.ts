/**
 * The bad bytes of the relay fuzz's malformed-frame and bad-Hello commands, each with the Error
 * code the relay must answer (docs/PROTOCOL.md §1, §2, §9), or none when it only closes.
 */
import { ErrorCode, PacketType, encodePacket } from '../protocol/index.ts';
import { seededBytes } from './bytes.ts';
import { rawFrame } from './packet-arbitraries.ts';
import { RELAY_MAX_FRAME_BYTES, type HelloShape, type MalformedShape } from './relay-command-data.ts';

/** Before VirtualIP the relay takes frames of at most this many bytes (docs/PROTOCOL.md §2). */
const PRE_HELLO_MAX_FRAME_BYTES = 64;
const KNOWN_TYPES = new Set(Object.values(PacketType) as number[]);
const UNKNOWN_TYPES = Array.from({ length: 256 }, (_, i) => i).filter((t) => !KNOWN_TYPES.has(t));
const FIXED_SIZES: readonly [number, number][] = [
  [PacketType.Hello, 6],
  [PacketType.Ping, 4],
  [PacketType.BindRequest, 6],
  [PacketType.Unbind, 2],
  [PacketType.SocketStatusRequest, 16],
  [PacketType.SocketConnectionResponse, 9],
  [PacketType.SocketEnd, 4],
  [PacketType.SocketClosed, 5],
  [PacketType.WindowUpdate, 8],
];

export /** The bytes and the fatal Error code (undefined: closed without one) of a malformed frame. */
function malformed(shape: MalformedShape, n: number): { bytes: Uint8Array; code: number | undefined } {
  switch (shape) {
    case 'empty':
      return { bytes: new Uint8Array(4), code: ErrorCode.MalformedFrame };
    case 'tooLarge':
      return { bytes: rawFrame(RELAY_MAX_FRAME_BYTES + 1 + (n % 0xfffbffff), PacketType.ArbitraryData, new Uint8Array(8)), code: ErrorCode.FrameTooLarge };
    case 'unknownType': {
      const body = seededBytes(n, n % 16);
      return { bytes: rawFrame(1 + body.length, UNKNOWN_TYPES[n % UNKNOWN_TYPES.length], body), code: ErrorCode.UnknownPacketType };
    }
    case 'wrongSize': {
      const [type, size] = FIXED_SIZES[n % FIXED_SIZES.length];
      const wrong = (size + 1 + ((n >>> 8) % 30)) % 40;
      const bodyBytes = wrong === size ? size + 1 : wrong;
      return { bytes: rawFrame(1 + bodyBytes, type, seededBytes(n, bodyBytes)), code: ErrorCode.MalformedFrame };
    }
    case 'shortData':
      return { bytes: rawFrame(1 + (n % 4), PacketType.ArbitraryData, seededBytes(n, n % 4)), code: ErrorCode.MalformedFrame };
    case 'relayOnly': {
      const choices = [
        encodePacket({ type: PacketType.VirtualIp, version: 1, ip: n, keepaliveIntervalMs: 1, keepaliveTimeoutMs: 1, maxFrameBytes: 1024 }),
        encodePacket({ type: PacketType.BindResponse, requestId: n, status: 0, port: n & 0xffff }),
        encodePacket({ type: PacketType.RequestFailed, requestId: n, reason: 1 }),
      ];
      return { bytes: choices[n % choices.length], code: ErrorCode.UnexpectedPacket };
    }
    case 'secondHello':
      return { bytes: encodePacket({ type: PacketType.Hello, version: 1 }), code: ErrorCode.UnexpectedPacket };
    case 'badUtf8Error':
      return { bytes: rawFrame(5, PacketType.Error, new Uint8Array([0, 1, 0xc3, 0x28])), code: ErrorCode.MalformedFrame };
    case 'clientError':
      return { bytes: encodePacket({ type: PacketType.Error, code: n & 0xffff, message: 'fuzz: going away' }), code: undefined };
    case 'cutOff':
      // A header promising more than ever arrives; then the client vanishes.
      return { bytes: rawFrame(100 + (n % 1000), PacketType.ArbitraryData, seededBytes(n, n % 50)), code: undefined };
  }
}

export function helloBytes(shape: HelloShape, n: number): { bytes: Uint8Array; code: number | undefined } {
  switch (shape) {
    case 'ok':
      return { bytes: encodePacket({ type: PacketType.Hello, version: 1 }), code: undefined };
    case 'badVersion': {
      const version = n & 0xffff || 2;
      return { bytes: encodePacket({ type: PacketType.Hello, version: version === 1 ? 2 : version }), code: ErrorCode.UnsupportedVersion };
    }
    case 'packetFirst':
      return { bytes: encodePacket({ type: PacketType.Ping, nonce: n }), code: ErrorCode.UnexpectedPacket };
    case 'bigFirst':
      return { bytes: rawFrame(PRE_HELLO_MAX_FRAME_BYTES + 1 + (n % 100_000), PacketType.Hello, new Uint8Array(4)), code: ErrorCode.FrameTooLarge };
  }
}
