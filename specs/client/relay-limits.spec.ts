/**
 * A relay's announced frame limit is checked: below the protocol's minimum (1,024 bytes) no data
 * frame could carry a byte, and the client refuses it in words instead of looping on empty frames.
 */
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { connect } from '../../actors/client/index.ts';
import { FrameDecoder, PROTOCOL_VERSION, PacketType, decodeFrame, encodePacket, parseIpv4 } from '../../protocol/index.ts';

t.test('a relay announcing frames under the minimum is refused with a clear error', async (t) => {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const decoder = new FrameDecoder((_type, frame) => {
      const packet = decodeFrame(frame);
      if (packet instanceof Error || packet.type !== PacketType.Hello) return;
      socket.write(
        encodePacket({ type: PacketType.VirtualIp, version: PROTOCOL_VERSION, ip: parseIpv4('10.0.0.9') as number, keepaliveIntervalMs: 15_000, keepaliveTimeoutMs: 45_000, maxFrameBytes: 9 }),
      );
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  await t.rejects(connect({ host: '127.0.0.1', port, localAddress: '127.0.0.33', identity: false, reconnect: false }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /announced frames of at most 9 bytes, below the protocol's minimum of 1024/,
  });
});
