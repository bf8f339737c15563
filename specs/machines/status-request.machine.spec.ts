import t from 'tap';
import { SimulatedClock, createActor, initialTransition, transition } from 'xstate';
import { statusRequestMachine, type StatusRequestEvent } from '../../machines/status-request.machine.ts';

/** The machine with fake effects that log what the relay would do, on simulated time. */
function run(options: { timeoutMs?: number } = {}) {
  const log: string[] = [];
  const clock = new SimulatedClock();
  const machine = statusRequestMachine.provide({
    delays: { requestTimeout: options.timeoutMs ?? 10_000 },
    actions: {
      settle: () => void log.push('settle'),
      forwardAnswer: (_, { status }) => void log.push(`answer ${status}`),
      failRequest: (_, { reason }) => void log.push(`fail ${reason}`),
    },
  });
  const actor = createActor(machine, { input: { relayId: 9 }, clock });
  actor.on('handshake.completed', ({ outcome }) => void log.push(`handshake ${outcome}`));
  actor.start();
  return { actor, clock, log };
}

t.test('an answer settles, is forwarded, then reported; the timeout is then moot', async (t) => {
  const { actor, clock, log } = run();
  actor.send({ type: 'response.received', status: 0, answer: 'listening' });
  t.equal(actor.getSnapshot().value, 'answered');
  t.equal(actor.getSnapshot().status, 'done', 'answered is final');
  clock.increment(60_000);
  t.same(log, ['settle', 'answer 0', 'handshake listening'], 'no timeout after the answer');
});

t.test('the request timeout runs on the given clock: not a millisecond early', async (t) => {
  const { actor, clock, log } = run({ timeoutMs: 10_000 });
  clock.increment(9_999);
  t.equal(actor.getSnapshot().value, 'waiting', 'still waiting 1 ms before the timeout');
  t.same(log, []);
  clock.increment(1);
  t.equal(actor.getSnapshot().value, 'timedOut');
  t.same(log, ['settle', 'fail Timeout', 'handshake timeout']);
  actor.send({ type: 'response.received', status: 0, answer: 'listening' });
  t.same(log, ['settle', 'fail Timeout', 'handshake timeout'], 'a late answer changes nothing');
});

t.test('the target leaving fails the request without a handshake report', async (t) => {
  const { actor, clock, log } = run();
  actor.send({ type: 'target.left' });
  t.equal(actor.getSnapshot().value, 'targetLeft');
  clock.increment(60_000);
  t.same(log, ['settle', 'fail TargetDisconnected']);
});

t.test('pure transitions name the effects in order', async (t) => {
  const [waiting] = initialTransition(statusRequestMachine, { relayId: 1 });
  t.equal(waiting.value, 'waiting');
  const answers: [StatusRequestEvent, string[]][] = [
    // Leaving `waiting` cancels the request timeout before anything else.
    [{ type: 'response.received', status: 1, answer: 'not-bound' }, ['xstate.cancel', 'settle', 'forwardAnswer', 'xstate.emit']],
    [{ type: 'target.left' }, ['xstate.cancel', 'settle', 'failRequest']],
  ];
  for (const [event, expected] of answers) {
    const [, actions] = transition(statusRequestMachine, waiting, event);
    t.same(actions.map((a) => a.type), expected, event.type);
  }
});
