import t from 'tap';
import fc from 'fast-check';
import {
  BODY_SIZES,
  DEFAULT_MAX_FRAME_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  FrameDecoder,
  PacketType,
  ProtocolError,
  decodeFrame,
  encodeArbitraryData,
  encodeArbitraryDataHeader,
  encodePacket,
  readConnectionId,
  type Packet,
} from '../../protocol/index.ts';

const address = (ip: number, port: number) => ({ ip, port });

/** One of every packet, with values near the edges of their fields. */
const SAMPLES: Packet[] = [
  { type: PacketType.Hello, version: 1 },
  {
    type: PacketType.VirtualIp,
    version: 1,
    ip: 0x64400001,
    keepaliveIntervalMs: 15_000,
    keepaliveTimeoutMs: 45_000,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  },
  { type: PacketType.Ping, nonce: 0xffffffff },
  { type: PacketType.Pong, nonce: 0 },
  { type: PacketType.Error, code: 3, message: 'frame too large — ünïcødé' },
  { type: PacketType.BindRequest, requestId: 7, port: 0 },
  { type: PacketType.BindResponse, requestId: 7, status: 0, port: 65535 },
  { type: PacketType.Unbind, port: 80 },
  {
    type: PacketType.SocketStatusRequest,
    requestId: 0xfffffffe,
    source: address(0x64400002, 49152),
    destination: address(0x64400003, 25565),
  },
  { type: PacketType.SocketStatusResponse, requestId: 1, status: 2 },
  { type: PacketType.RequestFailed, requestId: 2, reason: 1 },
  {
    type: PacketType.SocketConnectionRequest,
    requestId: 3,
    connectionId: 0x80000001,
    source: address(0xffffffff, 1),
    destination: address(0, 65535),
  },
  { type: PacketType.SocketConnectionResponse, requestId: 3, connectionId: 9, status: 1 },
  { type: PacketType.ArbitraryData, connectionId: 42, data: new Uint8Array([0, 1, 2, 253, 254, 255]) },
  { type: PacketType.ArbitraryData, connectionId: 43, data: new Uint8Array(0) },
  { type: PacketType.SocketEnd, connectionId: 42 },
  { type: PacketType.SocketClosed, connectionId: 42, reason: 2 },
  { type: PacketType.WindowUpdate, connectionId: 42, bytes: 1 << 20 },
  // §2a identity packets: fixed-size byte strings.
  { type: PacketType.Challenge, nonce: Uint8Array.from({ length: 32 }, (_, i) => 255 - i) },
  {
    type: PacketType.IdentityProof,
    publicKey: Uint8Array.from({ length: 32 }, (_, i) => i),
    signature: Uint8Array.from({ length: 64 }, (_, i) => 200 - i),
  },
  { type: PacketType.PeerKey, connectionId: 0xfffffffe, publicKey: Uint8Array.from({ length: 32 }, (_, i) => i * 3) },
];

function collect(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
  const frames: Uint8Array[] = [];
  // Copy: the decoder may hand out views into the pushed chunk.
  const decoder = new FrameDecoder((_type, frame) => frames.push(frame.slice()), { maxFrameBytes });
  return { decoder, frames };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

t.test('every packet round-trips through encode and decode', async (t) => {
  for (const packet of SAMPLES) {
    const decoded = decodeFrame(encodePacket(packet));
    t.same(decoded, packet, `type 0x${packet.type.toString(16)}`);
  }
});

t.test('Hello has the documented bytes', async (t) => {
  t.same(
    Array.from(encodePacket({ type: PacketType.Hello, version: 1 })),
    [0, 0, 0, 7, 1, 0x41, 0x4e, 0x45, 0x54, 0, 1],
  );
});

t.test('the identity packets have the documented sizes, and keys of another size are refused', async (t) => {
  const proof = encodePacket({ type: PacketType.IdentityProof, publicKey: new Uint8Array(32), signature: new Uint8Array(64) });
  t.same(Array.from(proof.subarray(0, 5)), [0, 0, 0, 97, 0x41], 'length 97 = type + 32 + 64');
  const peerKey = encodePacket({ type: PacketType.PeerKey, connectionId: 1, publicKey: new Uint8Array(32) });
  t.same(Array.from(peerKey.subarray(0, 9)), [0, 0, 0, 37, 0x42, 0, 0, 0, 1]);
  t.throws(() => encodePacket({ type: PacketType.PeerKey, connectionId: 1, publicKey: new Uint8Array(31) }), RangeError);
  const short = Uint8Array.from([0, 0, 0, 32, 0x40, ...new Uint8Array(31)]);
  t.match(decodeFrame(short), { code: 'ERR_MALFORMED_PACKET' }, 'a 31-byte Challenge is malformed');
});

t.test('ArbitraryData head written apart matches the whole frame', async (t) => {
  const payload = new Uint8Array([9, 8, 7]);
  const whole = encodeArbitraryData(0xdeadbeef, payload);
  t.same(concat([encodeArbitraryDataHeader(0xdeadbeef, 3), payload]), whole);
  t.equal(readConnectionId(whole), 0xdeadbeef);
});

t.test('a stream of frames split at every byte boundary decodes to the same frames', async (t) => {
  const frames = SAMPLES.map(encodePacket);
  const stream = concat(frames);
  for (let cut = 0; cut <= stream.length; cut++) {
    const { decoder, frames: out } = collect();
    t.equal(decoder.push(stream.subarray(0, cut)), undefined);
    t.equal(decoder.push(stream.subarray(cut)), undefined);
    if (out.length !== frames.length) {
      t.fail(`cut at ${cut}: ${out.length} frames`);
      continue;
    }
    for (let i = 0; i < frames.length; i++) {
      if (Buffer.compare(out[i], frames[i]) !== 0) t.fail(`cut at ${cut}: frame ${i} differs`);
    }
  }
  // And one byte at a time.
  const { decoder, frames: out } = collect();
  for (const byte of stream) decoder.push(new Uint8Array([byte]));
  t.same(out, frames);
  t.equal(decoder.bufferedBytes, 0);
});

t.test('oversize frame is refused before anything is allocated for it', async (t) => {
  const { decoder, frames } = collect(1024);
  // Claims 4 GiB − 1: must fail on the header alone.
  const error = decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x30]));
  t.type(error, ProtocolError);
  t.equal(error?.code, 'ERR_FRAME_TOO_LARGE');
  t.match(error?.message, /4294967295 bytes exceeds the limit of 1024/);
  t.equal(frames.length, 0);
  t.equal(decoder.bufferedBytes, 0);
  // A failed decoder accepts nothing more.
  t.type(decoder.push(encodePacket({ type: PacketType.Ping, nonce: 1 })), ProtocolError);
  t.equal(frames.length, 0);
});

t.test('oversize length is caught even when the header arrives a byte at a time', async (t) => {
  const { decoder } = collect(1024);
  t.equal(decoder.push(new Uint8Array([0])), undefined);
  t.equal(decoder.push(new Uint8Array([0])), undefined);
  t.equal(decoder.push(new Uint8Array([0x04])), undefined);
  t.equal(decoder.push(new Uint8Array([0x01]))?.code, 'ERR_FRAME_TOO_LARGE');
});

t.test('a frame of exactly the limit is accepted', async (t) => {
  const { decoder, frames } = collect(1024);
  const frame = encodeArbitraryData(1, new Uint8Array(1024 - 5));
  t.equal(decoder.push(frame), undefined);
  t.equal(frames.length, 1);
});

t.test('zero-length frame is malformed', async (t) => {
  const { decoder } = collect();
  t.equal(decoder.push(new Uint8Array([0, 0, 0, 0]))?.code, 'ERR_FRAME_EMPTY');
});

t.test('decodeFrame reports bad packets as typed errors', async (t) => {
  const unknown = decodeFrame(new Uint8Array([0, 0, 0, 1, 0x7f]));
  t.type(unknown, ProtocolError);
  t.equal((unknown as ProtocolError).code, 'ERR_UNKNOWN_PACKET_TYPE');
  t.match((unknown as ProtocolError).message, /0x7f/);

  const shortPing = decodeFrame(new Uint8Array([0, 0, 0, 3, PacketType.Ping, 1, 2]));
  t.equal((shortPing as ProtocolError).code, 'ERR_MALFORMED_PACKET');
  t.match((shortPing as ProtocolError).message, /Ping body is 2 bytes, expected 4/);

  const longPing = decodeFrame(new Uint8Array([0, 0, 0, 6, PacketType.Ping, 1, 2, 3, 4, 5]));
  t.equal((longPing as ProtocolError).code, 'ERR_MALFORMED_PACKET');

  const badMagic = decodeFrame(new Uint8Array([0, 0, 0, 7, 1, 0x47, 0x45, 0x54, 0x20, 0, 1]));
  t.match((badMagic as ProtocolError).message, /magic/);

  const badUtf8 = decodeFrame(new Uint8Array([0, 0, 0, 4, PacketType.Error, 0, 1, 0xff]));
  t.match((badUtf8 as ProtocolError).message, /UTF-8/);

  const shortData = decodeFrame(new Uint8Array([0, 0, 0, 3, PacketType.ArbitraryData, 0, 0]));
  t.match((shortData as ProtocolError).message, /at least 4/);

  t.equal((decodeFrame(new Uint8Array([0, 0])) as ProtocolError).code, 'ERR_MALFORMED_PACKET');
});

t.test('the body-size table agrees with the encoder, and the decoder judges a header by it', async (t) => {
  for (const packet of SAMPLES) {
    const body = encodePacket(packet).length - 5;
    const size = BODY_SIZES[packet.type];
    t.ok(body >= size.min && body <= size.max, `${packet.type}: a ${body}-byte body fits ${size.min}..${size.max}`);
  }
  const longest = encodePacket({ type: PacketType.Error, code: 1, message: 'x'.repeat(2 * MAX_ERROR_MESSAGE_BYTES) });
  t.equal(longest.length - 5, BODY_SIZES[PacketType.Error].max, 'the longest Error the encoder makes is the table\'s maximum');
  // Issue 9, finding 2: every fixed-size type declaring one byte more is refused at its header.
  for (const [type, size] of Object.entries(BODY_SIZES)) {
    if (size.max === Infinity) continue;
    const header = new Uint8Array([0, 0, 0, 0, Number(type)]);
    new DataView(header.buffer).setUint32(0, size.max + 2);
    const decoder = new FrameDecoder(() => t.fail('no frame'));
    t.equal(decoder.push(header)?.code, 'ERR_MALFORMED_PACKET', `type ${type} declaring ${size.max + 1} body bytes`);
  }
  t.equal(new FrameDecoder(() => {}).push(new Uint8Array([0, 0, 0, 9, 0x7f]))?.code, 'ERR_UNKNOWN_PACKET_TYPE', 'an unknown type at its header');
});

t.test('an HTTP request is refused as a frame too large, not buffered', async (t) => {
  const { decoder } = collect();
  const error = decoder.push(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.equal(error?.code, 'ERR_FRAME_TOO_LARGE');
});

t.test('stop() ends delivery mid-chunk', async (t) => {
  let count = 0;
  const decoder = new FrameDecoder(() => {
    count++;
    decoder.stop();
  });
  const ping = encodePacket({ type: PacketType.Ping, nonce: 1 });
  decoder.push(concat([ping, ping, ping]));
  t.equal(count, 1);
});

// Property-based: arbitrary packets, arbitrary chunking.
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 0xff });
const addr = fc.record({ ip: u32, port: u16 });
const packetArb: fc.Arbitrary<Packet> = fc.oneof(
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
  fc.record({ type: fc.constant(PacketType.Error), code: u16, message: fc.string({ maxLength: 100 }) }),
  fc.record({ type: fc.constant(PacketType.BindRequest), requestId: u32, port: u16 }),
  fc.record({ type: fc.constant(PacketType.BindResponse), requestId: u32, status: u8, port: u16 }),
  fc.record({ type: fc.constant(PacketType.Unbind), port: u16 }),
  fc.record({ type: fc.constant(PacketType.SocketStatusRequest), requestId: u32, source: addr, destination: addr }),
  fc.record({ type: fc.constant(PacketType.SocketStatusResponse), requestId: u32, status: u8 }),
  fc.record({ type: fc.constant(PacketType.RequestFailed), requestId: u32, reason: u8 }),
  fc.record({
    type: fc.constant(PacketType.SocketConnectionRequest),
    requestId: u32,
    connectionId: u32,
    source: addr,
    destination: addr,
  }),
  fc.record({ type: fc.constant(PacketType.SocketConnectionResponse), requestId: u32, connectionId: u32, status: u8 }),
  fc.record({ type: fc.constant(PacketType.ArbitraryData), connectionId: u32, data: fc.uint8Array({ maxLength: 3000 }) }),
  fc.record({ type: fc.constant(PacketType.SocketEnd), connectionId: u32 }),
  fc.record({ type: fc.constant(PacketType.SocketClosed), connectionId: u32, reason: u8 }),
  fc.record({ type: fc.constant(PacketType.WindowUpdate), connectionId: u32, bytes: u32 }),
);

t.test('property: any packet sequence, any chunking, decodes to the same packets', async (t) => {
  fc.assert(
    fc.property(fc.array(packetArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1 }), (packets, cuts) => {
      const stream = concat(packets.map(encodePacket));
      const decoded: Packet[] = [];
      const decoder = new FrameDecoder((_type, frame) => {
        const p = decodeFrame(frame.slice());
        if (p instanceof ProtocolError) throw p;
        decoded.push(p);
      });
      let offset = 0;
      let i = 0;
      while (offset < stream.length) {
        const size = cuts[i++ % cuts.length];
        if (decoder.push(stream.subarray(offset, offset + size)) !== undefined) return false;
        offset += size;
      }
      // Error messages are cut at 512 bytes on the wire; our strings stay below that.
      return JSON.stringify(decoded) === JSON.stringify(packets);
    }),
    { numRuns: 300 },
  );
  t.pass('300 random packet streams round-tripped');
});

t.test('property: random and mutated bytes never throw and never over-allocate', async (t) => {
  const maxFrameBytes = 4096;
  const mutated = fc
    .tuple(fc.array(packetArb, { minLength: 1, maxLength: 5 }), fc.array(fc.tuple(fc.nat(), u8), { maxLength: 8 }))
    .map(([packets, flips]) => {
      const bytes = concat(packets.map(encodePacket));
      for (const [at, value] of flips) bytes[at % bytes.length] = value;
      return bytes;
    });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 2000 }), mutated), fc.integer({ min: 1, max: 97 }), (bytes, chunk) => {
      const decoder = new FrameDecoder(
        (_type, frame) => {
          if (frame.length > maxFrameBytes + 4) throw new Error('frame above limit delivered');
          const result = decodeFrame(frame);
          if (!(result instanceof ProtocolError) && typeof result.type !== 'number') throw new Error('no type');
        },
        { maxFrameBytes },
      );
      for (let offset = 0; offset < bytes.length; offset += chunk) {
        const error = decoder.push(bytes.subarray(offset, offset + chunk));
        if (error !== undefined) {
          if (!(error instanceof ProtocolError)) return false;
          break;
        }
        // Never holds more than one frame's worth.
        if (decoder.bufferedBytes > maxFrameBytes + 4) return false;
      }
      return true;
    }),
    { numRuns: 1000 },
  );
  t.pass('1000 random/mutated inputs handled without throwing');
});
