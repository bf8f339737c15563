import t from 'tap';
import { PacketType } from '../../protocol/index.ts';
import { EmitterControlBus, type ControlMessage } from '../../actors/relay/control-bus.ts';

t.test('messages reach the subscriber of their kind, synchronously, with address and event intact', async (t) => {
  const bus = new EmitterControlBus();
  const heard: string[] = [];
  bus.subscribe('pair', ({ to, event }) => void heard.push(`pair ${to.id} ${event.type}`));
  bus.subscribe('connection', ({ to, event }) => void heard.push(`connection ${to.id} ${event.type}`));
  const messages: ControlMessage[] = [
    { to: { kind: 'pair', id: 7 }, event: { type: 'end.left', end: 'a' } },
    { to: { kind: 'connection', id: 3 }, event: { type: 'packet.send', packet: { type: PacketType.Pong, nonce: 1 } } },
    { to: { kind: 'statusRequest', id: 9 }, event: { type: 'target.left' } },
  ];
  for (const message of messages) bus.send(message);
  // Synchronous delivery is the contract: replies must join the corked chunk under way.
  t.same(heard, ['pair 7 end.left', 'connection 3 packet.send'], 'delivered before send returned; no subscriber, no delivery');
});

t.test('unsubscribing stops delivery', async (t) => {
  const bus = new EmitterControlBus();
  let count = 0;
  const off = bus.subscribe('pair', () => void count++);
  bus.send({ to: { kind: 'pair', id: 1 }, event: { type: 'idle.timeout' } });
  off();
  bus.send({ to: { kind: 'pair', id: 1 }, event: { type: 'idle.timeout' } });
  t.equal(count, 1);
});
