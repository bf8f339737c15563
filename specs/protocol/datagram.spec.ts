/** The datagram packets' bytes (docs/PROTOCOL.md §10), split at every boundary, and their size limits. */
import t from 'tap';
import {
  FrameDecoder,
  MAX_DATAGRAM_PAYLOAD_BYTES,
  PacketType,
  ProtocolError,
  checkFrameHeader,
  decodeFrame,
  encodePacket,
  type Packet,
} from '../../protocol/index.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

t.test('the documented bytes', async (t) => {
  t.equal(hex(encodePacket({ type: PacketType.DatagramBind, requestId: 1, port: 7777 })), '0000000734000000011e61');
  t.equal(hex(encodePacket({ type: PacketType.DatagramUnbind, port: 7777 })), '00000003351e61');
  // 10.0.0.2:5000 → 10.0.0.3:6000, payload "hi"
  const datagram = encodePacket({
    type: PacketType.Datagram,
    source: { ip: 0x0a000002, port: 5000 },
    destination: { ip: 0x0a000003, port: 6000 },
    payload: new TextEncoder().encode('hi'),
  });
  t.equal(hex(datagram), '0000000f36' + '0a0000021388' + '0a0000031770' + '6869');
});

t.test('each packet decodes back from any split of its bytes', async (t) => {
  const packets: Packet[] = [
    { type: PacketType.DatagramBind, requestId: 0xffffffff, port: 0 },
    { type: PacketType.DatagramUnbind, port: 65535 },
    { type: PacketType.Datagram, source: { ip: 1, port: 2 }, destination: { ip: 3, port: 4 }, payload: new Uint8Array(0) },
    { type: PacketType.Datagram, source: { ip: 1, port: 2 }, destination: { ip: 3, port: 4 }, payload: new Uint8Array([7]) },
  ];
  for (const packet of packets) {
    const bytes = encodePacket(packet);
    for (let at = 0; at <= bytes.length; at++) {
      const got: Uint8Array[] = [];
      const decoder = new FrameDecoder((_type, frame) => void got.push(frame.slice()));
      t.equal(decoder.push(bytes.subarray(0, at)), undefined);
      t.equal(decoder.push(bytes.subarray(at)), undefined);
      t.equal(got.length, 1);
      const decoded = decodeFrame(got[0]);
      if (decoded instanceof ProtocolError) t.fail(decoded.message);
      else t.same({ ...decoded, ...('payload' in decoded ? { payload: [...decoded.payload] } : {}) }, { ...packet, ...('payload' in packet ? { payload: [...packet.payload] } : {}) });
    }
  }
});

t.test('a Datagram is judged by its header: at most 12 + MAX_DATAGRAM_PAYLOAD_BYTES of body, at least 12', async (t) => {
  t.equal(checkFrameHeader(PacketType.Datagram, 1 + 12 + MAX_DATAGRAM_PAYLOAD_BYTES), undefined);
  t.match(checkFrameHeader(PacketType.Datagram, 1 + 12 + MAX_DATAGRAM_PAYLOAD_BYTES + 1), { code: 'ERR_MALFORMED_PACKET' });
  t.match(checkFrameHeader(PacketType.Datagram, 1 + 11), { code: 'ERR_MALFORMED_PACKET' });
  t.match(checkFrameHeader(PacketType.DatagramBind, 1 + 7), { code: 'ERR_MALFORMED_PACKET' });
});
