/**
 * What a relay says at connect is checked: an announced frame limit below the protocol's minimum
 * (1,024 bytes, where no data frame could carry a byte) is refused in words instead of looping on
 * empty frames; a relay that ends the session in the same write as VirtualIP fails the connect
 * instead of leaving a client that says it is connected with no session beneath it.
 */
import net from 'node:net';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { connect } from '../../actors/client/index.ts';
import { ErrorCode, FrameDecoder, PROTOCOL_VERSION, PacketType, decodeFrame, encodePacket, parseIpv4 } from '../../protocol/index.ts';


/** A VirtualIP answer announcing frames of at most `maxFrameBytes`. */
function virtualIp(maxFrameBytes: number): Uint8Array {
  return encodePacket({ type: PacketType.VirtualIp, version: PROTOCOL_VERSION, ip: parseIpv4('10.0.0.9') as number, keepaliveIntervalMs: 15_000, keepaliveTimeoutMs: 45_000, maxFrameBytes });
}

/** A TCP server on loopback that answers each client's Hello with `answer`; resolves with its port. */
async function scriptedRelay(t: Test, answer: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    const decoder = new FrameDecoder((_type, frame) => {
      const packet = decodeFrame(frame);
      if (!(packet instanceof Error) && packet.type === PacketType.Hello) answer(socket);
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

t.test('a relay announcing frames under the minimum is refused with a clear error', async (t) => {
  const port = await scriptedRelay(t, (socket) => socket.write(virtualIp(9)));
  await t.rejects(connect({ host: '127.0.0.1', port, localAddress: '127.0.0.33', identity: false, reconnect: false }), {
    code: 'ERR_RELAY_UNREACHABLE',
    message: /announced frames of at most 9 bytes, below the protocol's minimum of 1024/,
  });
});

t.test('a relay that ends the session together with VirtualIP fails the connect', async (t) => {
  const port = await scriptedRelay(t, (socket) => {
    const goodbye = encodePacket({ type: PacketType.Error, code: ErrorCode.RelayShuttingDown, message: 'stopping' });
    socket.end(Buffer.concat([virtualIp(65_545), goodbye]));
  });
  await t.rejects(connect({ host: '127.0.0.1', port, localAddress: '127.0.0.34', identity: false, reconnect: false }), {
    code: 'ERR_RELAY_LOST',
    message: /RelayShuttingDown/,
  });
});
