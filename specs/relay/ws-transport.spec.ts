/**
 * WsTransport over a scripted ws WebSocket and a stand-in TCP socket: each write is one binary
 * message, cork/uncork reach the TCP socket (one writev per batch), writableLength is ws's
 * bufferedAmount, 'drain' is the TCP socket's, messages that arrive while paused are held and
 * come out in order after resume (never during the caller's own turn), a text message is a
 * violation, not data.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import t from 'tap';
import { WsTransport, type ServerWebSocket } from '../../actors/relay/ws-transport.ts';

class FakeWs extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  paused = false;
  sent: Array<{ data: number[]; binary: boolean }> = [];
  closedWith: number | undefined;
  terminated = false;
  send(data: Uint8Array, options: { binary: boolean }): void {
    this.sent.push({ data: [...data], binary: options.binary });
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 2;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close');
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

class FakeRaw extends EventEmitter {
  corks = 0;
  writableNeedDrain = false;
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    this.corks--;
  }
}

function make(): { ws: FakeWs; raw: FakeRaw; transport: WsTransport; data: number[][] } {
  const ws = new FakeWs();
  const raw = new FakeRaw();
  const transport = new WsTransport(ws as unknown as ServerWebSocket, raw as unknown as Duplex, '127.0.0.2');
  const data: number[][] = [];
  transport.on('data', (chunk: Buffer) => data.push([...chunk]));
  return { ws, raw, transport, data };
}

t.test('writes are binary messages; cork reaches the TCP socket; backpressure is bufferedAmount and the socket drain', async (t) => {
  const { ws, raw, transport } = make();
  t.equal(transport.remoteAddress, '127.0.0.2');
  transport.cork();
  t.equal(raw.corks, 1, 'corked the TCP socket');
  transport.write(new Uint8Array([1, 2]));
  transport.write(new Uint8Array([3]));
  transport.uncork();
  t.equal(raw.corks, 0);
  t.same(ws.sent, [{ data: [1, 2], binary: true }, { data: [3], binary: true }], 'one binary message per write');
  ws.bufferedAmount = 700_000;
  t.equal(transport.writableLength, 700_000);
  raw.writableNeedDrain = true;
  t.equal(transport.write(new Uint8Array([4])), false, 'write() says wait while the socket needs drain');
  let drained = 0;
  transport.on('drain', () => drained++);
  raw.emit('drain');
  t.equal(drained, 1, "the TCP socket's drain");
  ws.readyState = 3;
  t.equal(transport.writable, false);
  t.equal(transport.destroyed, true);
  t.equal(transport.write(new Uint8Array([5])), false, 'nothing sent once closed');
  t.equal(ws.sent.length, 3);
});

t.test('paused: messages are held, then delivered in order after resume, on a later turn', async (t) => {
  const { ws, transport, data } = make();
  ws.emit('message', Buffer.from([1]), true);
  transport.pause();
  t.ok(ws.paused, 'pause() stops reading the TCP socket');
  ws.emit('message', Buffer.from([2]), true);
  ws.emit('message', Buffer.from([3, 4]), true);
  t.same(data, [[1]], 'held while paused');
  transport.resume();
  t.same(data, [[1]], 'not during the caller’s own turn');
  t.ok(ws.paused, 'the socket stays paused until what was held is out');
  ws.emit('message', Buffer.from([5]), true);
  await new Promise((resolve) => process.nextTick(resolve));
  t.same(data, [[1], [2], [3, 4], [5]], 'held messages first, in order, then the new one');
  t.equal(ws.paused, false, 'reading again');
});

t.test('a pause while delivering held messages holds the rest', async (t) => {
  const { ws, transport, data } = make();
  transport.pause();
  ws.emit('message', Buffer.from([1]), true);
  ws.emit('message', Buffer.from([2]), true);
  transport.once('data', () => transport.pause());
  transport.resume();
  await new Promise((resolve) => process.nextTick(resolve));
  t.same(data, [[1]], 'paused again after the first');
  t.ok(ws.paused);
  transport.resume();
  await new Promise((resolve) => process.nextTick(resolve));
  t.same(data, [[1], [2]]);
});

t.test('a text message is a violation, never data; end() and destroy() close the WebSocket', async (t) => {
  const { ws, transport, data } = make();
  const violations: string[] = [];
  transport.onViolation = (message) => violations.push(message);
  ws.emit('message', Buffer.from('hi'), false);
  t.same(data, []);
  t.match(violations, [/text WebSocket message/]);
  transport.end(new Uint8Array([9]));
  t.same(ws.sent.at(-1), { data: [9], binary: true }, 'end(bytes) sends them first');
  t.equal(ws.closedWith, 1000, 'then a normal close');
  let closed = 0;
  transport.on('close', () => closed++);
  transport.destroy();
  t.ok(ws.terminated);
  t.equal(closed, 1, "'close' once the WebSocket has closed");
});
