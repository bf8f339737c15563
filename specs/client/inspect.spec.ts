/** The client API's `inspect` option reaches every client and socket actor (Stately inspection). */
import t from 'tap';
import type { InspectionEvent } from 'xstate';
import { clientFor, openPair, relayFor } from './fixtures.ts';

/** Machine id of the actor an inspection event is about. */
function machineOf(e: InspectionEvent): string | undefined {
  return (e.actorRef.getSnapshot() as { machine?: { id: string } }).machine?.id;
}

/** Every state value each machine was seen in, as JSON. */
function statesByMachine(events: InspectionEvent[]): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  for (const e of events) {
    if (e.type !== '@xstate.snapshot') continue;
    const machine = machineOf(e) ?? '?';
    const list = seen.get(machine) ?? [];
    list.push(JSON.stringify((e.snapshot as { value?: unknown }).value));
    seen.set(machine, list);
  }
  return seen;
}

t.test('connect({ inspect }) streams client and virtual-socket actors with their real states', async (t) => {
  const relay = await relayFor(t);
  const events: InspectionEvent[] = [];
  const inspect = (e: InspectionEvent) => events.push(e);
  const server = await clientFor(t, relay, 2, { inspect });
  const client = await clientFor(t, relay, 3, { inspect });
  const [conn] = await openPair(server, client, 7);
  // Under end-to-end encryption close() sends its sealed end marker first; wait for 'close' all the same.
  const closed = new Promise((resolve) => conn.once('close', resolve));
  conn.close();
  await closed;

  const registered = new Set(events.filter((e) => e.type === '@xstate.actor').map(machineOf));
  t.ok(registered.has('client'), 'client actors registered');
  t.ok(registered.has('virtualSocket'), 'virtual-socket actors registered');
  const states = statesByMachine(events);
  t.ok(states.get('client')?.includes('"connected"'), `the client reached connected (${states.get('client')?.join(' ')})`);
  const socketStates = (states.get('virtualSocket') ?? []).join(' ');
  t.match(socketStates, /listening/, 'the listener reached listening');
  t.match(socketStates, /connected/, 'a socket reached connected');
  t.match(socketStates, /closed/, 'and closed');
  t.ok(events.some((e) => e.type === '@xstate.event' && machineOf(e) === 'virtualSocket'), 'socket events are streamed too');
});
