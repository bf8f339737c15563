/**
 * SocketClosed from an end reaches the other end with the reason unchanged (docs/PROTOCOL.md §8),
 * the end-to-end reasons included: both ends of an e2e connection fail with the same code only if
 * the relay carries E2eIntegrity, E2eTruncated and E2eMismatch as they were sent.
 */
import t from 'tap';
import { CLOSE_REASON_NAMES, CloseReason, PacketType } from '../../protocol/index.ts';
import { pairUp, relayFixture } from '../helpers/relay-fixture.ts';

t.test('every close reason an end sends reaches the other end unchanged', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  for (const [n, reason] of Object.values(CloseReason).entries()) {
    const { connectionId } = await pairUp(a, va.ip, b, vb.ip, 6000 + n);
    a.send({ type: PacketType.SocketClosed, connectionId, reason });
    t.same(await b.next(PacketType.SocketClosed), { type: PacketType.SocketClosed, connectionId, reason }, `${CLOSE_REASON_NAMES[reason]} (${reason}) passed on`);
  }
  t.equal(relay.status().pairs.length, 0, 'every pair released');
});
