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

/** An accepted (connected.open) socket actor. */
function connectedActor() {
  return createActor(virtualSocketMachine, { input: { accepted: true, port: 7, remote: '10.0.0.3:49152' } }).start();
}

t.test('the tags say what a connection may do: open reads and writes, each half-close takes one away', async (t) => {
  const tags = (a: ReturnType<typeof connectedActor>) => [...a.getSnapshot().tags].sort();
  const a = connectedActor();
  t.same(tags(a), ['readable', 'writable'], 'open');
  a.send({ type: 'socket.end.received' });
  t.same(tags(a), ['writable'], 'readEnded: we may still write');
  const b = connectedActor();
  b.send({ type: 'socket.end' });
  t.same(tags(b), ['readable'], 'ending: end() called, no new sends, reading goes on');
  b.send({ type: 'socket.end.sent' });
  t.same(tags(b), ['readable'], 'writeEnded');
  b.send({ type: 'socket.close' });
  t.same(tags(b), [], 'closed: neither');
});

t.test("end() while sends are queued: the peer's end waits in finishing until our SocketEnd is out", async (t) => {
  const a = connectedActor();
  t.equal(a.getSnapshot().context.writeEnded, false);
  a.send({ type: 'socket.end' });
  t.same(a.getSnapshot().value, { connected: 'ending' });
  t.equal(a.getSnapshot().context.writeEnded, true, 'recorded at end(), before SocketEnd is written');
  a.send({ type: 'socket.end.received' });
  t.same(a.getSnapshot().value, { connected: 'finishing' }, 'not closed: our SocketEnd is still to go');
  t.equal(a.getSnapshot().status, 'active');
  a.send({ type: 'socket.end.sent' });
  t.equal(a.getSnapshot().value, 'closed');
  t.equal(a.getSnapshot().context.writeEnded, true, 'kept past closed');
  // After the peer's end: end() → finishing → closed once SocketEnd is out.
  const b = connectedActor();
  b.send({ type: 'socket.end.received' });
  b.send({ type: 'socket.end' });
  t.same(b.getSnapshot().value, { connected: 'finishing' });
  b.send({ type: 'socket.end.sent' });
  t.equal(b.getSnapshot().status, 'done');
  // A close without end(): writeEnded stays false, so a later send() says "closed", not "ended".
  const c = connectedActor();
  c.send({ type: 'socket.close', code: 'ERR_CLOSED_BY_PEER', message: 'gone' });
  t.equal(c.getSnapshot().context.writeEnded, false);
  t.same(c.getSnapshot().context.error, { code: 'ERR_CLOSED_BY_PEER', message: 'gone' });
});
