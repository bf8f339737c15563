/**
 * WsUnfinished (actors/relay/ws-unfinished.ts) follows the frame headers of a WebSocket's incoming
 * bytes and says how many ws holds undelivered: the frame under way, and the fragments of a
 * message not finished. Checked against a frame-level model at every byte, and for every way the
 * stream can be cut into reads.
 */
import t from 'tap';
import { WsUnfinished } from '../../actors/relay/ws-unfinished.ts';
import { splits } from '../helpers/splits.ts';

interface Frame {
  fin: boolean;
  opcode: number;
  payload: number;
  masked?: boolean;
}

/** A frame's bytes (RFC 6455 §5.2): header with the shortest length form, a mask if masked, a payload. */
function frameBytes({ fin, opcode, payload, masked = true }: Frame): Buffer {
  const length = payload < 126 ? [payload] : payload < 0x1_0000 ? [126, payload >> 8, payload & 0xff] : [127, 0, 0, 0, 0, ...[24, 16, 8, 0].map((s) => (payload >> s) & 0xff)];
  length[0] |= masked ? 0x80 : 0;
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, ...length]), Buffer.alloc(masked ? 4 : 0, 7), Buffer.alloc(payload, 0x55)]);
}

const FRAMES: Frame[] = [
  { fin: true, opcode: 2, payload: 5 },
  // A fragmented message with a Ping between its fragments, then an empty final fragment.
  { fin: false, opcode: 2, payload: 130 },
  { fin: true, opcode: 9, payload: 3 },
  { fin: false, opcode: 0, payload: 0 },
  { fin: true, opcode: 0, payload: 0 },
  { fin: true, opcode: 2, payload: 0, masked: false },
  // A 64-bit length, left unfinished.
  { fin: true, opcode: 2, payload: 70_000 },
];

/** The stream, cut 20 bytes into the last frame's payload. */
const pieces = FRAMES.map(frameBytes);
const STREAM = Buffer.concat(pieces).subarray(0, pieces.slice(0, -1).reduce((n, p) => n + p.length, 0) + 14 + 20);

/** What ws holds after `p` bytes, frame by frame: finished fragments of an open message, and the frame under way. */
function expected(p: number): number {
  let start = 0;
  let fragments = 0;
  for (const [i, frame] of FRAMES.entries()) {
    const size = pieces[i].length;
    if (p < start + size) return fragments + Math.max(0, p - start);
    if (frame.opcode < 8) fragments = frame.fin ? 0 : fragments + size;
    start += size;
  }
  return fragments;
}

t.test('bytes held: at every byte, a frame under way and the fragments before it; none between messages', async (t) => {
  const tally = new WsUnfinished();
  const wrong: string[] = [];
  for (let p = 1; p <= STREAM.length; p++) {
    tally.push(STREAM.subarray(p - 1, p));
    if (tally.bytes !== expected(p)) wrong.push(`after ${p} bytes: ${tally.bytes}, expected ${expected(p)}`);
  }
  t.same(wrong, []);
  t.equal(expected(pieces[0].length), 0, 'the model: nothing held after a whole message');
  t.equal(tally.bytes, 14 + 20, 'the unfinished frame: its 14-byte header and 20 bytes of payload');
});

t.test('the same for every cut of the stream into reads', async (t) => {
  let checked = 0;
  const wrong: string[] = [];
  for (const cut of splits(STREAM.subarray(0, 180))) {
    const tally = new WsUnfinished();
    let p = 0;
    for (const piece of cut) {
      tally.push(piece);
      p += piece.length;
      if (tally.bytes !== expected(p)) wrong.push(`cut ${cut.map((c) => c.length).join('+')}: after ${p} bytes ${tally.bytes}, expected ${expected(p)}`);
    }
    checked++;
  }
  t.same(wrong.slice(0, 5), []);
  t.ok(checked > 1000, `${checked} cuts`);
});

t.test("messageBytes: the message's payload as declared so far (ws's measure for its maxPayload), control frames apart", async (t) => {
  const tally = new WsUnfinished();
  const at = (frames: number) => pieces.slice(0, frames).reduce((n, p) => n + p.length, 0);
  tally.push(STREAM.subarray(0, at(1)));
  t.equal(tally.messageBytes, 0, 'none after a whole message');
  tally.push(STREAM.subarray(at(1), at(1) + 7));
  t.equal(tally.messageBytes, 0, 'not before its header is whole');
  tally.push(STREAM.subarray(at(1) + 7, at(1) + 8));
  t.equal(tally.messageBytes, 130, "a data frame's declared payload once its header is in");
  tally.push(STREAM.subarray(at(1) + 8, at(3) + 2));
  t.equal(tally.messageBytes, 130, 'a Ping between fragments adds nothing');
  tally.push(STREAM.subarray(at(3) + 2, at(5)));
  t.equal(tally.messageBytes, 0, 'none once the final fragment is in');
  tally.push(STREAM.subarray(at(6), at(6) + 9));
  t.equal(tally.messageBytes, 0, 'not before the 64-bit length is whole');
  tally.push(STREAM.subarray(at(6) + 9));
  t.equal(tally.messageBytes, 70_000);
});

