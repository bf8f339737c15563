/**
 * The relay's FrameReader must see exactly the frames protocol/decoder.ts sees, whatever the
 * chunking: data frames as slices that concatenate to the frame, everything else whole, and the
 * same errors for bad lengths.
 */
import t from 'tap';
import fc from 'fast-check';
import { FrameReader } from '../../actors/relay/frame-reader.ts';
import { FrameDecoder, PacketType, encodeArbitraryData, encodePacket } from '../../protocol/index.ts';
import { splitAt } from '../../fuzz/bytes.ts';

const MAX = 1024;

/** Frames as the reader hands them out, each flattened to one byte array, plus the first error. */
function readAll(chunks: Uint8Array[]): { frames: number[][]; error?: string } {
  const frames: number[][] = [];
  const reader = new FrameReader(
    {
      frame: (_type, frame) => {
        frames.push([...frame]);
      },
      dataPieces: (connectionId, frameBytes, pieces) => {
        const whole = pieces.flatMap((p) => [...p]);
        if (whole.length !== frameBytes) throw new Error(`pieces make ${whole.length} bytes, not ${frameBytes}`);
        const id = ((whole[5] << 24) | (whole[6] << 16) | (whole[7] << 8) | whole[8]) >>> 0;
        if (id !== connectionId) throw new Error(`connection id ${connectionId}, frame says ${id}`);
        frames.push(whole);
      },
    },
    { maxFrameBytes: MAX },
  );
  for (const chunk of chunks) {
    const error = reader.push(chunk);
    if (error) return { frames, error: error.code };
  }
  return { frames };
}

function decodeAll(chunks: Uint8Array[]): { frames: number[][]; error?: string } {
  const frames: number[][] = [];
  const decoder = new FrameDecoder((_type, frame) => frames.push([...frame]), { maxFrameBytes: MAX });
  for (const chunk of chunks) {
    const error = decoder.push(chunk);
    if (error) return { frames, error: error.code };
  }
  return { frames };
}


const stream = Buffer.concat([
  encodeArbitraryData(0x01020304, new Uint8Array(300).map((_, i) => i)),
  encodePacket({ type: PacketType.Ping, nonce: 9 }),
  encodeArbitraryData(7, new Uint8Array(0)),
  encodePacket({ type: PacketType.WindowUpdate, connectionId: 7, bytes: 65536 }),
  encodeArbitraryData(8, new Uint8Array([1, 2, 3])),
]);

t.test('every split into two and three chunks gives the decoder\'s frames', async (t) => {
  const expected = decodeAll([stream]).frames;
  t.equal(expected.length, 5);
  for (let i = 0; i <= stream.length; i++) {
    t.same(readAll(splitAt(stream, [i])), { frames: expected }, `split at ${i}`);
    for (let j = i; j <= stream.length; j += 7) {
      const got = readAll(splitAt(stream, [i, j]));
      if (got.frames.length !== expected.length) t.fail(`split at ${i}, ${j}`);
    }
  }
  t.same(readAll([...stream].map((b) => new Uint8Array([b]))), { frames: expected }, 'one byte at a time');
});

t.test('bad lengths are refused as the decoder refuses them, before the type byte arrives', async (t) => {
  t.same(readAll([new Uint8Array([0, 0, 0, 0])]), { frames: [], error: 'ERR_FRAME_EMPTY' });
  t.same(readAll([new Uint8Array([0, 0]), new Uint8Array([4, 1])]), { frames: [], error: 'ERR_FRAME_TOO_LARGE' });
  t.same(readAll([new Uint8Array([0, 0, 4, 1, PacketType.ArbitraryData, 0, 0])]), { frames: [], error: 'ERR_FRAME_TOO_LARGE' });
  const reader = new FrameReader({ frame: () => {}, dataPieces: () => {} }, { maxFrameBytes: MAX });
  reader.push(new Uint8Array([0, 0, 0, 0]));
  t.equal(reader.push(new Uint8Array([1]))?.code, 'ERR_MALFORMED_PACKET', 'nothing more after a failure');
  // Data too short for its connection id is refused at its header, before its body arrives.
  t.same(readAll([new Uint8Array([0, 0, 0, 3, PacketType.ArbitraryData])]), { frames: [], error: 'ERR_MALFORMED_PACKET' });
});

t.test('stop() ends delivery mid-chunk', async (t) => {
  const seen: number[] = [];
  const reader = new FrameReader(
    {
      frame: (type) => {
        seen.push(type);
        reader.stop();
      },
      dataPieces: () => {
        seen.push(-1);
      },
    },
    { maxFrameBytes: MAX },
  );
  reader.push(Buffer.concat([encodePacket({ type: PacketType.Ping, nonce: 1 }), encodePacket({ type: PacketType.Ping, nonce: 2 })]));
  t.same(seen, [PacketType.Ping]);
});

t.test('random frame streams and random chunking: same frames as the decoder', async () => {
  const frame = fc.oneof(
    fc.record({ id: fc.nat(), data: fc.uint8Array({ maxLength: 900 }) }).map(({ id, data }) => encodeArbitraryData(id, data)),
    fc.nat().map((nonce) => encodePacket({ type: PacketType.Ping, nonce })),
    fc.uint8Array({ minLength: 1, maxLength: 12 }),
  );
  fc.assert(
    fc.property(fc.array(frame, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
      const bytes = Buffer.concat(frames);
      const chunks = splitAt(bytes, cuts);
      const want = decodeAll(chunks);
      const got = readAll(chunks);
      // Where the decoder fails the reader fails too, with frames up to that point the same.
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`reader ${JSON.stringify(got).slice(0, 200)} vs decoder ${JSON.stringify(want).slice(0, 200)}`);
    }),
    { numRuns: 300 },
  );
});

t.test('a data frame trickled one byte per push is kept in a few buffers, not a slice per byte', async (t) => {
  // Issue 9, finding 1: one slice object (~113 B of heap) was kept per byte received.
  const payload = new Uint8Array(200 * 1024).map((_, i) => (i * 7) & 0xff);
  const frame = encodeArbitraryData(42, payload);
  let got: Uint8Array[] | undefined;
  const reader = new FrameReader(
    {
      frame: () => {},
      dataPieces: (_id, _bytes, pieces) => {
        got = pieces;
      },
    },
    { maxFrameBytes: 256 * 1024 },
  );
  for (let i = 0; i < frame.length; i++) {
    reader.push(frame.subarray(i, i + 1));
    if (i < frame.length - 1 && reader.bufferedBytes !== i + 1) {
      t.fail(`after ${i + 1} bytes the reader counts ${reader.bufferedBytes}`);
      break;
    }
  }
  t.ok(got, 'the frame was delivered');
  t.ok(got!.length <= 32, `${got!.length} pieces for ${frame.length} one-byte pushes`);
  t.same(Buffer.concat(got!), Buffer.from(frame), 'the pieces are the frame');
  t.equal(reader.bufferedBytes, 0);
  t.equal(reader.incomplete, false);
});

t.test('a held frame and the bytes after it are delivered, in order, on resume()', async (t) => {
  const seen: number[] = [];
  let hold = true;
  const reader = new FrameReader(
    {
      frame: (_type, frame) => {
        seen.push(frame[8]);
      },
      dataPieces: () => {
        if (hold) return false;
        seen.push(-1);
      },
    },
    { maxFrameBytes: MAX },
  );
  const data = encodeArbitraryData(1, new Uint8Array(600));
  const ping = (n: number) => encodePacket({ type: PacketType.Ping, nonce: n });
  reader.push(Buffer.concat([ping(1), data.subarray(0, 100)]));
  reader.push(Buffer.concat([data.subarray(100), ping(2)]));
  t.same(seen, [1], 'nothing after the held frame is delivered');
  t.equal(reader.holding, true);
  t.equal(reader.bufferedBytes, data.length + 9, 'the held frame and the bytes after it are counted');
  reader.push(ping(3));
  t.equal(reader.resume(), undefined);
  t.same(seen, [1], 'still held: the handler held it again');
  hold = false;
  reader.resume();
  t.same(seen, [1, -1, 2, 3], 'held frame, then what followed it, in order');
  t.equal(reader.bufferedBytes, 0);
  t.equal(reader.holding, false);
});

t.test('a header whose declared length its type cannot have is refused before any body arrives', async (t) => {
  // Issue 9, finding 2: a Ping declaring 256 KiB made the relay allocate 256 KiB; here, 1000 bytes.
  const ping = new Uint8Array([0, 0, 3, 0xe8, PacketType.Ping]);
  t.same(readAll([ping]), { frames: [], error: 'ERR_MALFORMED_PACKET' });
  t.same(readAll([ping.subarray(0, 4), ping.subarray(4)]), { frames: [], error: 'ERR_MALFORMED_PACKET' });
  t.same(readAll([new Uint8Array([0, 0, 3, 0, PacketType.Error])]), { frames: [], error: 'ERR_MALFORMED_PACKET' }, 'an Error longer than 514 bytes');
  t.same(readAll([new Uint8Array([0, 0, 0, 9, 0x7f])]), { frames: [], error: 'ERR_UNKNOWN_PACKET_TYPE' });
});
