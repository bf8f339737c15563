/**
 * protocol/fields.ts: the field readers read what the encoder wrote, as unsigned numbers, and
 * the named sizes are the sizes of real frames.
 */
import t from 'tap';
import {
  CONNECTION_ID_OFFSET,
  DATA_FRAME_HEAD_BYTES,
  FRAME_HEADER_BYTES,
  PacketType,
  WINDOW_UPDATE_FRAME_BYTES,
  encodeArbitraryData,
  encodeArbitraryDataHeader,
  encodePacket,
  readConnectionId,
  readFrameLength,
  readU32,
  readWindowUpdateBytes,
} from '../../protocol/index.ts';

t.test('readU32 is big-endian and unsigned at any offset', async (t) => {
  const bytes = new Uint8Array([0xaa, 0xff, 0xff, 0xff, 0xff, 0x80]);
  t.equal(readU32(bytes, 1), 0xffffffff, 'all ones is 4294967295, not -1');
  t.equal(readU32(bytes, 2), 0xffffff80);
  t.equal(readU32(new Uint8Array([0x01, 0x02, 0x03, 0x04]), 0), 0x01020304);
});

t.test('frame fields read in place what the encoder wrote', async (t) => {
  const update = encodePacket({ type: PacketType.WindowUpdate, connectionId: 0xfffffffe, bytes: 0x80000001 });
  t.equal(update.length, WINDOW_UPDATE_FRAME_BYTES, 'a WindowUpdate is 13 bytes');
  t.equal(readFrameLength(update), WINDOW_UPDATE_FRAME_BYTES - 4);
  t.equal(readConnectionId(update), 0xfffffffe);
  t.equal(readWindowUpdateBytes(update), 0x80000001);
  const data = encodeArbitraryData(0xdeadbeef, new Uint8Array([1, 2, 3]));
  t.equal(readConnectionId(data), 0xdeadbeef);
  t.equal(readFrameLength(data), 1 + 4 + 3);
  t.equal(encodeArbitraryDataHeader(1, 0).length, DATA_FRAME_HEAD_BYTES, 'an ArbitraryData head is 9 bytes');
  t.equal(DATA_FRAME_HEAD_BYTES, 9);
  t.equal(CONNECTION_ID_OFFSET, FRAME_HEADER_BYTES);
  t.equal(readConnectionId(encodePacket({ type: PacketType.SocketClosed, connectionId: 77, reason: 1 })), 77);
});
