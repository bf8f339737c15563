import t from 'tap';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import { PacketType } from '../../protocol/index.ts';
import { observedRelay, openPair } from './observed-relay.ts';
import { waiter, within } from './wait.ts';

interface Received {
  type: string;
  sessionId: string;
  name?: string;
  definition?: string;
  event?: { type: string };
  snapshot?: { value?: unknown; status?: string };
}

t.test('--inspect streams actor registration, events and snapshots with real state names to a ws server', async (t) => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await within('the inspector ws server listens', once(wss, 'listening'));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => resolve());
  }));
  const received: Received[] = [];
  const { wake, until } = waiter();
  wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      received.push(JSON.parse(String(data)) as Received);
      wake();
    });
  });

  const { port } = wss.address() as AddressInfo;
  const { open } = await observedRelay(t, { inspectUrl: `ws://127.0.0.1:${port}` });
  const a = await open('127.0.0.2');
  const b = await open('127.0.0.3');
  const { connectionId } = await openPair(a, b, 9000);
  a.client.send({ type: PacketType.SocketEnd, connectionId });
  await b.client.next(PacketType.SocketEnd);

  const pairSnapshot = (value: unknown) => (m: Received) =>
    m.type === '@xstate.snapshot' && JSON.stringify(m.snapshot?.value) === JSON.stringify(value);
  await until('the inspector receives the pair in active.endedByA', () => received.some(pairSnapshot({ active: 'endedByA' })));

  const registrations = received.filter((m) => m.type === '@xstate.actor');
  t.ok(registrations.some((m) => m.name === 'relayConnection'), 'a client connection actor registered by machine id');
  const pairActor = registrations.find((m) => m.name === 'socketPair');
  t.ok(pairActor, 'a socket pair actor registered');
  t.match(JSON.parse(pairActor?.definition ?? '{}'), { id: 'socketPair', states: { active: { states: { open: {} } } } }, 'the definition travels with it');
  t.ok(received.some((m) => m.type === '@xstate.event' && m.event?.type === 'response.accepted'), 'events with their dot names');
  t.ok(received.some(pairSnapshot({ active: 'open' })), 'snapshot in active.open');
  t.ok(received.some(pairSnapshot({ active: 'endedByA' })), 'snapshot in active.endedByA after SocketEnd');
  t.ok(received.some((m) => m.type === '@xstate.snapshot' && m.snapshot?.value === 'ready'), 'client connection reaches ready');
});
