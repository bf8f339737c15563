import t from 'tap';
import { createActor, initialTransition, transition } from 'xstate';
import { socketPairMachine, type SocketPairEvent } from '../../machines/socket-pair.machine.ts';

function after(events: SocketPairEvent[]) {
  let [snapshot, actions] = initialTransition(socketPairMachine, { id: 7 });
  const all = [...actions];
  for (const event of events) {
    [snapshot, actions] = transition(socketPairMachine, snapshot, event);
    all.push(...actions);
  }
  return { snapshot, actions: all.filter((a) => !a.type.startsWith('xstate.')).map((a) => ({ type: a.type, params: a.params })) };
}

t.test('accept activates before forwarding the response', async (t) => {
  const { snapshot, actions } = after([{ type: 'response.accepted' }]);
  t.same(snapshot.value, { active: 'open' });
  t.same(actions.filter((a) => a.type !== 'enterPhase').map((a) => a.type), ['activate', 'forwardResponse']);
});

t.test('the phase the data path reads is written on entering each state, and only there', async (t) => {
  const phases = (events: SocketPairEvent[]) =>
    after(events).actions.filter((a) => a.type === 'enterPhase').map((a) => (a.params as { phase: string }).phase);
  t.same(phases([]), ['requested']);
  t.same(phases([{ type: 'response.accepted' }]), ['requested', 'open']);
  t.same(phases([{ type: 'response.accepted' }, { type: 'end.received', end: 'a' }]), ['requested', 'open', 'endedByA']);
  t.same(phases([{ type: 'response.accepted' }, { type: 'end.received', end: 'b' }]), ['requested', 'open', 'endedByB']);
  t.same(
    phases([{ type: 'response.accepted' }, { type: 'end.received', end: 'a' }, { type: 'end.received', end: 'b' }]),
    ['requested', 'open', 'endedByA', 'closed'],
    'finished counts as closed for the data path',
  );
  t.same(phases([{ type: 'response.refused' }]), ['requested', 'closed']);
});

t.test('refusal, origin or target leaving before the answer', async (t) => {
  t.equal(after([{ type: 'response.refused' }]).snapshot.context.endReason, 'Refused');
  const originLeft = after([{ type: 'end.left', end: 'a' }]);
  t.equal(originLeft.snapshot.context.endReason, 'OriginDisconnected');
  t.ok(originLeft.actions.some((a) => a.type === 'notify'));
  const targetLeft = after([{ type: 'end.left', end: 'b' }]);
  t.same(targetLeft.actions.find((a) => a.type === 'failRequest')?.params, { reason: 'TargetDisconnected' });
});

t.test('half-close both ways finishes; a second end from one side is a violation', async (t) => {
  const finished = after([{ type: 'response.accepted' }, { type: 'end.received', end: 'a' }, { type: 'end.received', end: 'b' }]);
  t.equal(finished.snapshot.value, 'finished');
  t.equal(finished.snapshot.context.endReason, 'Finished');
  t.same(finished.actions.filter((a) => a.type === 'forwardEnd').map((a) => a.params), [{ to: 'b' }, { to: 'a' }]);
  const twice = after([{ type: 'response.accepted' }, { type: 'end.received', end: 'b' }, { type: 'end.received', end: 'b' }]);
  t.equal(twice.snapshot.value, 'closed');
  t.equal(twice.snapshot.context.endReason, 'ProtocolViolation');
});

t.test('close reasons reach the right ends', async (t) => {
  const byA = after([{ type: 'response.accepted' }, { type: 'close.received', end: 'a', reason: 'Normal' }]);
  t.same(byA.actions.find((a) => a.type === 'notify')?.params, { to: ['b'], reason: 'Normal' });
  const peer = after([{ type: 'response.accepted' }, { type: 'end.left', end: 'b' }]);
  t.same(peer.actions.find((a) => a.type === 'notify')?.params, { to: ['a'], reason: 'PeerDisconnected' });
  for (const [event, reason] of [
    [{ type: 'idle.timeout' }, 'IdleTimeout'],
    [{ type: 'relay.shutdown' }, 'RelayShutdown'],
    [{ type: 'violation', reason: 'FlowControlViolation' }, 'FlowControlViolation'],
  ] as const) {
    const r = after([{ type: 'response.accepted' }, event]);
    t.same(r.actions.find((a) => a.type === 'notify')?.params, { to: ['a', 'b'], reason });
    t.equal(r.snapshot.context.endReason, reason);
  }
});

t.test('request timeout is a named delay the relay shortens', async (t) => {
  const log: string[] = [];
  const machine = socketPairMachine.provide({
    delays: { requestTimeout: 5 },
    actions: {
      failRequest: (_, p) => void log.push(`fail ${p.reason}`),
      notify: (_, p) => void log.push(`notify ${p.to.join()} ${p.reason}`),
      release: () => void log.push('release'),
    },
  });
  const actor = createActor(machine, { input: { id: 1 } });
  const done = new Promise<void>((resolve) => actor.subscribe({ complete: resolve }));
  actor.start();
  await done;
  t.same(log, ['fail Timeout', 'notify b Error', 'release']);
});
