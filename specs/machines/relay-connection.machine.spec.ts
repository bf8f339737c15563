import t from 'tap';
import { SimulatedClock, createActor, fromPromise, initialTransition, transition } from 'xstate';
import { relayConnectionMachine, type AllocationResult } from '../../machines/relay-connection.machine.ts';

const input = { id: 1, supportedVersions: [1] };

t.test('hello with a supported version goes to registering; another version is refused', async (t) => {
  const [start] = initialTransition(relayConnectionMachine, input);
  t.equal(start.value, 'awaitingHello');
  const [registering] = transition(relayConnectionMachine, start, { type: 'hello.received', version: 1 });
  t.equal(registering.value, 'registering');
  const [refused, actions] = transition(relayConnectionMachine, start, { type: 'hello.received', version: 2 });
  t.equal(refused.value, 'closed');
  t.equal(refused.context.endReason, 'UnsupportedVersion');
  t.ok(actions.some((a) => a.type === 'sendError'));
  const [early] = transition(relayConnectionMachine, start, { type: 'packet.unexpected', name: 'BindRequest' });
  t.equal(early.context.endReason, 'UnexpectedPacket');
});

t.test('with fakes: store answer → VirtualIP; store failure → Error; hello timeout; keepalive', async (t) => {
  // Simulated time: the hello timeout is checked without waiting for it.
  const clock = new SimulatedClock();
  const run = (result: AllocationResult, helloTimeout = 10_000) => {
    const log: string[] = [];
    const machine = relayConnectionMachine.provide({
      delays: { helloTimeout },
      actors: { allocateAddress: fromPromise(async () => result) },
      actions: {
        sendVirtualIp: (_, p) => void log.push(`vip ${p.virtualIp}`),
        sendError: (_, p) => void log.push(`error ${p.error}`),
        closeTransport: () => void log.push('close'),
        release: () => void log.push('release'),
      },
    });
    const actor = createActor(machine, { input, clock }).start();
    return { actor, log };
  };
  const ok = run({ ok: true, virtualIp: 42 });
  ok.actor.send({ type: 'hello.received', version: 1 });
  await new Promise<void>((resolve) => ok.actor.subscribe((s) => s.value === 'ready' && resolve()));
  t.same(ok.log, ['vip 42']);
  ok.actor.send({ type: 'keepalive.timeout' });
  t.same(ok.log, ['vip 42', 'error KeepaliveTimeout', 'close', 'release']);
  t.equal(ok.actor.getSnapshot().status, 'done');

  const full = run({ ok: false, error: 'AddressSpaceExhausted', message: 'full' });
  full.actor.send({ type: 'hello.received', version: 1 });
  await new Promise<void>((resolve) => full.actor.subscribe({ complete: resolve }));
  t.same(full.log, ['error AddressSpaceExhausted', 'close', 'release']);

  const slow = run({ ok: true, virtualIp: 1 }, 5_000);
  clock.increment(4_999);
  t.same(slow.log, [], 'no timeout 1 ms early');
  clock.increment(1);
  t.same(slow.log, ['error HelloTimeout', 'close', 'release']);
  t.equal(slow.actor.getSnapshot().context.endReason, 'HelloTimeout');

  const gone = run({ ok: true, virtualIp: 1 });
  gone.actor.send({ type: 'transport.closed' });
  t.same(gone.log, ['release'], 'a closed transport is released without an Error');
});

t.test('the phase cache is written on entering each state; connected and disconnected are emitted there', async (t) => {
  const log: string[] = [];
  const machine = relayConnectionMachine.provide({
    actors: { allocateAddress: fromPromise<AllocationResult, { id: number }>(async () => ({ ok: true, virtualIp: 7 })) },
    actions: {
      enterPhase: (_, { phase }) => void log.push(`phase ${phase}`),
      sendVirtualIp: () => void log.push('vip'),
      release: () => void log.push('release'),
    },
  });
  const actor = createActor(machine, { input });
  actor.on('*', (event) => void log.push(`emit ${event.type}`));
  actor.start();
  actor.send({ type: 'hello.received', version: 1 });
  await new Promise<void>((resolve) => actor.subscribe((s) => s.value === 'ready' && resolve()));
  actor.send({ type: 'transport.closed' });
  t.same(log, [
    'phase awaitingHello',
    'phase registering',
    'vip',
    'phase ready',
    'emit client.connected',
    'phase closed',
    'release',
    'emit client.disconnected',
  ]);
});

t.test('identity (§2a): a proving Hello is challenged, then registered or refused; key mode refuses a Hello that proves nothing', async (t) => {
  const both = { id: 1, supportedVersions: [1, 2] };
  const [start] = initialTransition(relayConnectionMachine, both);
  const [proving, entry] = transition(relayConnectionMachine, start, { type: 'hello.received', version: 2, proves: true });
  t.equal(proving.value, 'proving');
  t.ok(entry.some((a) => a.type === 'sendChallenge'), 'the challenge goes out on entry');
  t.equal(transition(relayConnectionMachine, proving, { type: 'identity.proven' })[0].value, 'registering');
  const [refused, refusal] = transition(relayConnectionMachine, proving, { type: 'identity.refused', message: 'bad signature' });
  t.equal(refused.context.endReason, 'BadIdentityProof');
  t.ok(refusal.some((a) => a.type === 'sendError'));
  t.equal(transition(relayConnectionMachine, proving, { type: 'hello.received', version: 2, proves: true })[0].context.endReason, 'UnexpectedPacket');

  const [keyStart] = initialTransition(relayConnectionMachine, { ...both, identityRequired: true });
  t.equal(transition(relayConnectionMachine, keyStart, { type: 'hello.received', version: 1 })[0].context.endReason, 'IdentityRequired');
  t.equal(transition(relayConnectionMachine, keyStart, { type: 'hello.received', version: 2, proves: true })[0].value, 'proving');
  t.equal(transition(relayConnectionMachine, start, { type: 'hello.received', version: 1 })[0].value, 'registering', 'ip mode serves version 1 as before');

  // A proof that never comes: the hello timeout still applies.
  const clock = new SimulatedClock();
  const log: string[] = [];
  const machine = relayConnectionMachine.provide({
    delays: { helloTimeout: 1_000 },
    actions: { sendChallenge: () => void log.push('challenge'), sendError: (_, p) => void log.push(`error ${p.error}`) },
  });
  const actor = createActor(machine, { input: both, clock }).start();
  actor.send({ type: 'hello.received', version: 2, proves: true });
  clock.increment(1_000);
  t.same(log, ['challenge', 'error HelloTimeout']);
});
