import t from 'tap';
import { createActor } from 'xstate';
import { virtualSocketMachine } from '../../machines/virtual-socket.machine.ts';

t.test('listener: idle → binding → bound → listening → relistening → listening → closed', async (t) => {
  const a = createActor(virtualSocketMachine, { input: {} }).start();
  const seen = [a.getSnapshot().value];
  a.subscribe((s) => seen.push(s.value));
  a.send({ type: 'socket.bind' });
  a.send({ type: 'socket.bound', port: 7 });
  a.send({ type: 'socket.listen' });
  a.send({ type: 'socket.suspend' });
  a.send({ type: 'socket.bound', port: 7 });
  a.send({ type: 'socket.close' });
  t.same(seen, ['idle', 'binding', 'bound', 'listening', 'relistening', 'listening', 'closed']);
  t.equal(a.getSnapshot().context.port, 7);
  t.equal(a.getSnapshot().status, 'done');
});

t.test('bind failure returns to idle with the error', async (t) => {
  const a = createActor(virtualSocketMachine, { input: {} }).start();
  a.send({ type: 'socket.bind' });
  a.send({ type: 'socket.bind.failed', code: 'ERR_ADDRESS_IN_USE', message: 'in use' });
  t.equal(a.getSnapshot().value, 'idle');
  t.same(a.getSnapshot().context.error, { code: 'ERR_ADDRESS_IN_USE', message: 'in use' });
});

t.test('connector half-close: both ends finish the connection', async (t) => {
  const a = createActor(virtualSocketMachine, { input: {} }).start();
  a.send({ type: 'socket.bind' });
  a.send({ type: 'socket.bound', port: 49152 });
  a.send({ type: 'socket.connect', remote: '10.0.0.2:7' });
  t.equal(a.getSnapshot().value, 'connecting');
  a.send({ type: 'socket.connected' });
  a.send({ type: 'socket.end.received' });
  t.same(a.getSnapshot().value, { connected: 'readEnded' });
  a.send({ type: 'socket.end.sent' });
  t.equal(a.getSnapshot().value, 'closed');
  t.equal(a.getSnapshot().context.remote, '10.0.0.2:7');
});

t.test('an accepted socket starts connected; a refused connect closes with its code', async (t) => {
  const accepted = createActor(virtualSocketMachine, { input: { accepted: true, port: 7, remote: '10.0.0.3:49152' } }).start();
  t.same(accepted.getSnapshot().value, { connected: 'open' });
  const c = createActor(virtualSocketMachine, { input: {} }).start();
  c.send({ type: 'socket.bind' });
  c.send({ type: 'socket.bound', port: 1 });
  c.send({ type: 'socket.connect', remote: 'x' });
  c.send({ type: 'socket.connect.failed', code: 'ERR_CONNECTION_REFUSED', message: 'no' });
  t.equal(c.getSnapshot().value, 'closed');
  t.equal(c.getSnapshot().context.error?.code, 'ERR_CONNECTION_REFUSED');
});
