/**
 * Issue 9, finding 2: a 5-byte header declaring 262,144 bytes of a fixed-size type (Ping) made
 * the relay allocate the whole frame before any body arrived (2,000 such connections: +511 MB).
 * Now the declared length is judged against the type at the header (protocol/body-sizes.ts),
 * and a data frame's body is allocated only as it arrives. A bystander pair keeps working.
 */
import t from 'tap';
import { ErrorCode, PacketType } from '../../protocol/index.ts';
import { frameHeader, helloSocket, nextError } from '../helpers/raw-client.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';
import { Bystander } from '../helpers/bystander.ts';

const DECLARED = 256 * 1024;
const CONNECTIONS = 200;

/** Connections spread over ten source addresses. */
async function attackers(port: number, subnet: number) {
  return Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => helloSocket(port, `127.0.${subnet}.${(i % 10) + 1}`)));
}

t.test('a fixed-size type declaring 256 KiB is refused at its header', async (t) => {
  const { relay } = await relayFixture(t);
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const sockets = await attackers(relay.port, 3);
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const errors = sockets.map((s) => nextError(s, 10_000));
  for (const [i, s] of sockets.entries()) {
    s.write(frameHeader([PacketType.Ping, PacketType.WindowUpdate, PacketType.SocketConnectionRequest, PacketType.Error][i % 4], DECLARED));
  }
  for (const error of await Promise.all(errors)) {
    t.equal(error.code, ErrorCode.MalformedFrame);
    t.match(error.message, /body is 262143 bytes, expected/);
  }
  await bystander.advance(3);
  await bystander.stop();
});

t.test('a data frame declaring 256 KiB costs only the bytes that arrived, and times out', async (t) => {
  const { relay } = await relayFixture(t, { frameTimeoutMs: 1_500 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const sockets = await attackers(relay.port, 4);
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const errors = sockets.map((s) => nextError(s, 15_000));
  const counted = new Promise<number>((resolve) => {
    const timer = setInterval(() => {
      if (relay.counters.partialFrameBytes >= CONNECTIONS * 5) {
        clearInterval(timer);
        resolve(relay.counters.partialFrameBytes);
      }
    }, 10);
    t.teardown(() => clearInterval(timer));
  });
  for (const s of sockets) s.write(frameHeader(PacketType.ArbitraryData, DECLARED));
  // Headers only: 5 bytes each (the bystander's own frames may be in flight too).
  t.ok((await counted) <= CONNECTIONS * 5 + 64 * 1024, 'the relay keeps the header bytes, not the declared frames');
  await bystander.advance(3);
  for (const error of await Promise.all(errors)) t.equal(error.code, ErrorCode.FrameTimeout);
  await bystander.advance(3);
  await bystander.stop();
});
