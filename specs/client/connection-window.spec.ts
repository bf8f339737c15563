/**
 * The receive window a client grants is enforced on what it receives (actors/client/connection.ts,
 * docs/PROTOCOL.md §7): a relay that delivers more than granted (here a path that sends every
 * data frame to the client twice) gets the pair closed with FlowControlViolation, instead of a
 * queue that grows without limit.
 */
import t from 'tap';
import { FrameDecoder, PacketType } from '../../protocol/index.ts';
import { loopbackProxy } from '../helpers/loopback-proxy.ts';
import { closedWith } from '../helpers/connection-end.ts';
import { clientFor, relayFor } from './fixtures.ts';

t.test('data past the granted receive window closes the connection with FlowControlViolation and a clear error', async (t) => {
  const relay = await relayFor(t);
  let doubled = 0;
  // Between the receiving client and the relay: every ArbitraryData frame to the client twice.
  const port = await loopbackProxy(
    t,
    relay.port,
    (inbound, outbound) => {
      inbound.pipe(outbound);
      const decoder = new FrameDecoder(
        (type, frame) => {
          const copy = Buffer.from(frame);
          inbound.write(copy);
          if (type === PacketType.ArbitraryData) {
            inbound.write(copy);
            doubled++;
          }
        },
        { maxFrameBytes: 16 * 1024 * 1024 },
      );
      outbound.on('data', (chunk: Buffer) => decoder.push(chunk));
    },
    { fromPeerAddress: true },
  );
  const receiver = await clientFor(t, { host: '127.0.0.1', port }, 2, { e2e: false });
  const sender = await clientFor(t, relay, 3, { e2e: false });
  const listener = await receiver.listen(7);
  const accepting = listener.accept();
  const outgoing = await sender.connect({ address: receiver.virtualIp, port: 7 });
  const accepted = await accepting;
  // Nobody reads: the initial window (1 MiB) is all the sender may send; doubled, it is exceeded.
  void outgoing.send(new Uint8Array(1024 * 1024)).catch(() => {});
  const error = await closedWith(accepted);
  t.match(error, { code: 'ERR_CLOSED_BY_RELAY', reason: 'FlowControlViolation', message: /past the receive window this end granted/ }, 'the receiver closes, saying why');
  t.ok(doubled > 0, `the path doubled ${doubled} data frames`);
  t.ok(await closedWith(outgoing), 'the sender hears of the close');
});
