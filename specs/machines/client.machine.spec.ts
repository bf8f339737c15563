import t from 'tap';
import { SimulatedClock, createActor, fromPromise, waitFor } from 'xstate';
import { clientMachine } from '../../machines/client.machine.ts';

function withDials(results: Array<string | Error>, log: string[]) {
  return clientMachine.provide({
    actors: {
      dialRelay: fromPromise(async () => {
        const next = results.shift() ?? new Error('no more');
        if (next instanceof Error) throw Object.assign(next, { code: 'ERR_RELAY_UNREACHABLE' });
        return { virtualIp: next };
      }),
    },
    actions: {
      announceConnected: () => void log.push('connected'),
      announceLost: (_, p) => void log.push(`lost:${p.willReconnect}`),
      announceClosed: () => void log.push('closed'),
    },
  });
}

t.test('first dial failing closes with the error', async (t) => {
  const log: string[] = [];
  const a = createActor(withDials([new Error('refused')], log), { input: { reconnect: false } }).start();
  const s = await waitFor(a, (s) => s.status === 'done');
  t.same(s.context.error, { code: 'ERR_RELAY_UNREACHABLE', message: 'refused' });
  t.same(log, ['closed']);
});

t.test('losing the relay reconnects with backoff and keeps the address', async (t) => {
  const log: string[] = [];
  const policy = { initialDelayMs: 1, maxDelayMs: 4, factor: 2, maxAttempts: 5 };
  const a = createActor(withDials(['10.0.0.1', new Error('down'), '10.0.0.1'], log), { input: { reconnect: policy } }).start();
  await waitFor(a, (s) => s.matches('connected'));
  a.send({ type: 'relay.lost', code: 'ERR_RELAY_LOST', message: 'gone' });
  t.ok(a.getSnapshot().matches('reconnecting'));
  await waitFor(a, (s) => s.matches('connected'));
  t.equal(a.getSnapshot().context.virtualIp, '10.0.0.1');
  t.equal(a.getSnapshot().context.attempt, 0);
  t.same(log, ['connected', 'lost:true', 'connected']);
});

t.test('gives up after maxAttempts; without reconnect, lost means closed', async (t) => {
  const log: string[] = [];
  const policy = { initialDelayMs: 1, maxDelayMs: 1, factor: 1, maxAttempts: 2 };
  const a = createActor(withDials(['10.0.0.1', new Error('a'), new Error('b'), '10.0.0.1'], log), { input: { reconnect: policy } }).start();
  await waitFor(a, (s) => s.matches('connected'));
  a.send({ type: 'relay.lost', code: 'ERR_RELAY_LOST', message: 'gone' });
  await waitFor(a, (s) => s.status === 'done');
  t.same(log, ['connected', 'lost:true', 'closed']);
  const b = createActor(withDials(['10.0.0.1'], []), { input: { reconnect: false } }).start();
  await waitFor(b, (s) => s.matches('connected'));
  b.send({ type: 'relay.lost', code: 'ERR_RELAY_LOST', message: 'gone' });
  t.equal(b.getSnapshot().value, 'closed');
});

t.test('the backoff delay runs on the clock given to createActor (no real wait)', async (t) => {
  const log: string[] = [];
  const clock = new SimulatedClock();
  const policy = { initialDelayMs: 1_000, maxDelayMs: 60_000, factor: 2, maxAttempts: 5 };
  const a = createActor(withDials(['10.0.0.1', '10.0.0.1'], log), { input: { reconnect: policy }, clock }).start();
  await waitFor(a, (s) => s.matches('connected'), { timeout: 5_000 });
  a.send({ type: 'relay.lost', code: 'ERR_RELAY_LOST', message: 'gone' });
  t.same(a.getSnapshot().value, { reconnecting: 'waiting' });
  clock.increment(999);
  t.same(a.getSnapshot().value, { reconnecting: 'waiting' }, 'still waiting 1 ms before the delay');
  clock.increment(1);
  t.same(a.getSnapshot().value, { reconnecting: 'dialing' }, 'dialing once the simulated second has passed');
  await waitFor(a, (s) => s.matches('connected'), { timeout: 5_000 });
  t.same(log, ['connected', 'lost:true', 'connected']);
});
