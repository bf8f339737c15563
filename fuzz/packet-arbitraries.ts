/**
 * fast-check arbitraries for the wire protocol: every packet type with arbitrary field values,
 * frames that are valid, damaged or invented, and the ways a TCP stream can be cut into chunks.
 */
import fc from 'fast-check';
import { FRAME_HEADER_BYTES, MAX_DATAGRAM_PAYLOAD_BYTES, PacketType, encodePacket, type Packet, type WireAddress } from '../protocol/index.ts';
import { concatBytes } from './bytes.ts';

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });

const address: fc.Arbitrary<WireAddress> = fc.record({ ip: u32, port: u16 });

/**
 * Code points that have broken UTF-8 handling elsewhere: the byte-order mark (which a
 * TextDecoder strips by default), the replacement character, NUL, the last BMP and astral ones.
 */
const TRICKY_TEXT = ['\uFEFF', '\uFFFD', '\u0000', '\uFFFF', '\u{10FFFF}', '\u{1F600}', 'é', '€'];

/** Error messages: short and long (past the 512-byte cut), ASCII and multi-byte, tricky starts. */
export const errorMessage: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 120, maxLength: 400 }),
  fc
    .tuple(fc.array(fc.constantFrom(...TRICKY_TEXT), { maxLength: 3 }), fc.string({ unit: 'binary', maxLength: 40 }))
    .map(([head, tail]) => head.join('') + tail),
  fc
    .tuple(fc.nat({ max: 520 }), fc.constantFrom(...TRICKY_TEXT))
    .map(([asciiBytes, wide]) => 'a'.repeat(asciiBytes) + wide.repeat(4)),
);

/** Every packet type, each field over its whole range. */
export const packet: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({ type: fc.constant(PacketType.Hello), version: u16 }),
  fc.record({
    type: fc.constant(PacketType.VirtualIp),
    version: u16,
    ip: u32,
    keepaliveIntervalMs: u32,
    keepaliveTimeoutMs: u32,
    maxFrameBytes: u32,
  }),
  fc.record({ type: fc.constant(PacketType.Ping), nonce: u32 }),
  fc.record({ type: fc.constant(PacketType.Pong), nonce: u32 }),
  fc.record({ type: fc.constant(PacketType.Error), code: u16, message: errorMessage }),
  fc.record({ type: fc.constant(PacketType.BindRequest), requestId: u32, port: u16 }),
  fc.record({ type: fc.constant(PacketType.BindResponse), requestId: u32, status: u8, port: u16 }),
  fc.record({ type: fc.constant(PacketType.Unbind), port: u16 }),
  fc.record({ type: fc.constant(PacketType.SocketStatusRequest), requestId: u32, source: address, destination: address }),
  fc.record({ type: fc.constant(PacketType.SocketStatusResponse), requestId: u32, status: u8 }),
  fc.record({ type: fc.constant(PacketType.RequestFailed), requestId: u32, reason: u8 }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionRequest),
    requestId: u32,
    connectionId: u32,
    source: address,
    destination: address,
  }),
  fc.record({ type: fc.constant(PacketType.SocketConnectionResponse), requestId: u32, connectionId: u32, status: u8 }),
  fc.record({
    type: fc.constant(PacketType.ArbitraryData),
    connectionId: u32,
    data: fc.uint8Array({ maxLength: 1500 }),
  }),
  fc.record({ type: fc.constant(PacketType.SocketEnd), connectionId: u32 }),
  fc.record({ type: fc.constant(PacketType.SocketClosed), connectionId: u32, reason: u8 }),
  fc.record({ type: fc.constant(PacketType.WindowUpdate), connectionId: u32, bytes: u32 }),
) as fc.Arbitrary<Packet>;

/**
 * The datagram packets (docs/PROTOCOL.md §10), apart from `packet`: adding alternatives to
 * `packet` would change what every stored seed and path of its properties replays (fuzz/fixtures).
 */
export const datagramPacket: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({ type: fc.constant(PacketType.DatagramBind), requestId: u32, port: u16 }),
  fc.record({ type: fc.constant(PacketType.DatagramUnbind), port: u16 }),
  fc.record({
    type: fc.constant(PacketType.Datagram),
    source: address,
    destination: address,
    // Up to the 8 KiB maximum (§10): boundaries 0, 1 and max included by fast-check's bias.
    payload: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: MAX_DATAGRAM_PAYLOAD_BYTES - 2, maxLength: MAX_DATAGRAM_PAYLOAD_BYTES })),
  }),
) as fc.Arbitrary<Packet>;

/** A frame header (u32 length, u8 type) followed by `body`. */
export function rawFrame(length: number, type: number, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(bytes.buffer).setUint32(0, length >>> 0);
  bytes[4] = type;
  bytes.set(body, FRAME_HEADER_BYTES);
  return bytes;
}

/** Frame lengths around the edges a decoder must judge: 0, 1, the limit, just past it, u32 max. */
export function frameLength(maxFrameBytes: number): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(0, 1, 2, maxFrameBytes - 1, maxFrameBytes, maxFrameBytes + 1, 0xffffffff, 0x80000000),
    fc.integer({ min: 1, max: 64 }),
    fc.integer({ min: 0, max: 0xffffffff }),
  );
}

const KNOWN_TYPES = Object.values(PacketType) as number[];

/**
 * One piece of a byte stream: a valid frame, a valid frame with bytes flipped or cut, a header
 * whose length and type are invented (its body as long as it claims, or not), or plain noise.
 */
export function streamPiece(maxFrameBytes: number): fc.Arbitrary<Uint8Array> {
  const valid = fc.oneof({ arbitrary: packet, weight: 6 }, { arbitrary: datagramPacket, weight: 1 }).map(encodePacket);
  const damaged = fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 4 }), fc.option(fc.nat(), { nil: undefined }))
    .map(([frame, flips, cut]) => {
      const copy = frame.slice();
      for (const [at, value] of flips) copy[at % copy.length] = value;
      return cut === undefined ? copy : copy.subarray(0, cut % (copy.length + 1));
    });
  const invented = fc
    .tuple(frameLength(maxFrameBytes), fc.oneof(fc.constantFrom(...KNOWN_TYPES), u8), fc.uint8Array({ maxLength: 64 }), fc.boolean())
    .map(([length, type, body, honest]) => {
      // An honest header's body is exactly as long as it says, when that is small enough to build.
      if (honest && length >= 1 && length <= 4096) {
        const full = new Uint8Array(length - 1);
        full.set(body.subarray(0, full.length));
        return rawFrame(length, type, full);
      }
      return rawFrame(length, type, body);
    });
  return fc.oneof(
    { arbitrary: valid, weight: 4 },
    { arbitrary: damaged, weight: 2 },
    { arbitrary: invented, weight: 2 },
    { arbitrary: fc.uint8Array({ maxLength: 32 }), weight: 1 },
  );
}

/** A byte stream of a few pieces. */
export function byteStream(maxFrameBytes: number): fc.Arbitrary<Uint8Array> {
  return fc.array(streamPiece(maxFrameBytes), { maxLength: 8 }).map(concatBytes);
}

/** Cut points for a stream; biased to many small chunks (down to one byte at a time) or few. */
export const cuts: fc.Arbitrary<number[]> = fc.oneof(
  fc.array(fc.nat(), { maxLength: 6 }),
  fc.array(fc.nat(), { minLength: 20, maxLength: 200 }),
);
