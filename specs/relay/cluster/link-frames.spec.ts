/**
 * What a link delivers, re-addressed for the stand-in (actors/relay/cluster/link-frames.ts): every
 * pair frame comes out with this relay's connection id and otherwise byte for byte, whatever the
 * chunking (split at every boundary, heads split too); SocketEnd and SocketClosed are reported
 * after their bytes; a frame that is not a pair's, or has a bad size, is refused after the bytes
 * before it.
 */
import t from 'tap';
import { CloseReason, PacketType, decodeFrame, encodePacket, FrameDecoder, type Packet } from '../../../protocol/index.ts';
import { LinkFrames } from '../../../actors/relay/cluster/link-frames.ts';

const OURS = 0x01020304;

const packets: Packet[] = [
  { type: PacketType.ArbitraryData, connectionId: 0, data: Buffer.from('hello across') },
  { type: PacketType.WindowUpdate, connectionId: 0, bytes: 65_536 },
  { type: PacketType.ArbitraryData, connectionId: 0, data: Buffer.alloc(300, 7) },
  { type: PacketType.ArbitraryData, connectionId: 0, data: Buffer.alloc(0) },
  { type: PacketType.SocketEnd, connectionId: 0 },
  { type: PacketType.SocketClosed, connectionId: 0, reason: CloseReason.Normal },
];
const wire = Buffer.concat(packets.map((p) => encodePacket(p)));
const expected = packets.map((p) => ({ ...p, connectionId: OURS }));

function run(chunks: Uint8Array[]): { out: Packet[]; ends: Array<{ closed: boolean; framesBefore: number }>; errors: string[] } {
  const out: Packet[] = [];
  const ends: Array<{ closed: boolean; framesBefore: number }> = [];
  const errors: string[] = [];
  const decoder = new FrameDecoder((_type, frame) => {
    const packet = decodeFrame(frame);
    if (packet instanceof Error) throw packet;
    out.push(packet);
  });
  const frames = new LinkFrames(OURS, {
    bytes: (bytes) => void decoder.push(Buffer.from(bytes)),
    ended: (closed) => ends.push({ closed, framesBefore: out.length }),
  });
  for (const chunk of chunks) {
    const error = frames.push(chunk);
    if (error !== undefined) {
      errors.push(error);
      break;
    }
  }
  return { out, ends, errors };
}

const normalise = (ps: Packet[]) => ps.map((p) => ('data' in p ? { ...p, data: Buffer.from(p.data).toString('hex') } : p));

t.test('one chunk: every frame re-addressed, ends reported after their bytes', async (t) => {
  const { out, ends, errors } = run([Buffer.from(wire)]);
  t.same(errors, []);
  t.same(normalise(out), normalise(expected));
  t.same(ends, [
    { closed: false, framesBefore: packets.length },
    { closed: true, framesBefore: packets.length },
  ]);
});

t.test('split at every boundary, and byte by byte', async (t) => {
  for (let at = 1; at < wire.length; at++) {
    const copy = Buffer.from(wire);
    const { out, errors } = run([copy.subarray(0, at), copy.subarray(at)]);
    if (errors.length > 0 || out.length !== packets.length) t.fail(`split at ${at}: ${errors.join()} ${out.length} frames`);
    else t.same(normalise(out), normalise(expected), `split at ${at}`);
  }
  const copy = Buffer.from(wire);
  const bytes = [...copy].map((_, i) => copy.subarray(i, i + 1));
  t.same(normalise(run(bytes).out), normalise(expected), 'one byte at a time');
});

t.test('a frame that is not a pair frame resets the link after the frames before it', async (t) => {
  const ping = encodePacket({ type: PacketType.Ping, nonce: 1 });
  const { out, errors } = run([Buffer.concat([encodePacket(packets[0]), ping, encodePacket(packets[1])])]);
  t.equal(out.length, 1);
  t.equal((out[0] as { connectionId: number }).connectionId, OURS);
  t.match(errors[0], /type/);
});

t.test('a pair frame of the wrong size is refused, also when its head is split', async (t) => {
  const bad = Buffer.from(encodePacket({ type: PacketType.SocketEnd, connectionId: 0 }));
  bad.writeUInt32BE(9, 0); // a SocketEnd body of 8 bytes
  const whole = Buffer.concat([bad, Buffer.alloc(4)]);
  t.equal(run([whole]).errors.length, 1);
  t.equal(run([whole.subarray(0, 3), whole.subarray(3)]).errors.length, 1);
  t.equal(run([whole.subarray(0, 3), whole.subarray(3)]).out.length, 0);
});
