/**
 * The client's WebSocket transport over a scripted WebSocket (the WHATWG API's shape): bytes
 * held while paused come out in order on resume, a close is reported in words with its code,
 * a text message from the relay is an error, and a socket that never opens rejects the open.
 */
import t from 'tap';
import { webSocketOpener, type WebSocketLike } from '../../actors/client/web-socket-transport.ts';
import type { SessionTransport } from '../../actors/client/transport.ts';

class FakeWebSocket implements WebSocketLike {
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  sent: Uint8Array[] = [];
  closedWith: number | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  send(data: Uint8Array): void {
    this.sent.push(data.slice());
  }
  close(code?: number): void {
    this.closedWith = code;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
}

const target = { host: 'relay.example', port: 8080, url: 'ws://relay.example:8080/alphanet', localAddress: undefined };

async function opened(): Promise<{ fake: FakeWebSocket; transport: SessionTransport; events: string[] }> {
  let fake!: FakeWebSocket;
  const opening = webSocketOpener(() => (fake = new FakeWebSocket()))(target, new AbortController().signal);
  fake.open();
  const transport = await opening;
  const events: string[] = [];
  transport.listen({ data: (chunk) => events.push(`data ${[...chunk].join(',')}`), close: (error) => events.push(`close ${error?.message ?? 'clean'}`) });
  return { fake, transport, events };
}

t.test('binary messages held while paused come out in order on resume; writes are binary messages', async (t) => {
  const { fake, transport, events } = await opened();
  t.equal(fake.binaryType, 'arraybuffer');
  fake.onmessage!({ data: new Uint8Array([1, 2]).buffer });
  fake.onmessage!({ data: new Uint8Array([3]).buffer });
  t.same(events, [], 'nothing delivered before resume');
  transport.resume();
  fake.onmessage!({ data: new Uint8Array([4]).buffer });
  await Promise.resolve();
  t.same(events, ['data 1,2', 'data 3', 'data 4'], 'held bytes first, then live, in order');
  t.equal(transport.write(new Uint8Array([9, 9])), true);
  let flushed = false;
  transport.writeData(new Uint8Array([5]), new Uint8Array([6, 7]), () => (flushed = true));
  t.same(fake.sent.map((m) => [...m]), [[9, 9], [5], [6, 7]]);
  t.ok(flushed, 'the payload is released once send() has taken it');
});

t.test('a close with code 1009 is reported in words, once', async (t) => {
  const { fake, transport, events } = await opened();
  transport.resume();
  fake.onclose!({ code: 1009, reason: '' });
  fake.onclose!({ code: 1009, reason: '' });
  t.same(events, ['close the WebSocket closed: a message was larger than the relay accepts (code 1009)']);
  t.equal(transport.closed, true);
  t.equal(transport.write(new Uint8Array([1])), false, 'no write after close');
});

t.test('a text message from the relay ends the transport with a clear error', async (t) => {
  const { fake, transport, events } = await opened();
  transport.resume();
  fake.onmessage!({ data: 'hello' });
  t.same(events, ['close the relay sent a text WebSocket message: AlphaNET frames travel in binary messages']);
  t.equal(fake.closedWith, 1000);
});

t.test('backpressure: needsDrain above the high-water mark, drained() once bufferedAmount falls', async (t) => {
  const { fake, transport } = await opened();
  fake.bufferedAmount = 2 * 1024 * 1024;
  t.equal(transport.needsDrain, true);
  t.equal(transport.write(new Uint8Array([1])), false, 'write() asks the writer to wait');
  let done = false;
  const drained = transport.drained().then(() => (done = true));
  t.equal(transport.drained(), transport.drained(), 'one promise for every waiter');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(done, false);
  fake.bufferedAmount = 0;
  await drained;
  t.equal(transport.needsDrain, false);
});

t.test('a data frame goes whole above the high-water mark: head and payload, then wait', async (t) => {
  // Another connection's writes filled the buffer: this frame's head must not go without its
  // payload, or every byte after it is read as the wrong frame.
  const { fake, transport } = await opened();
  fake.bufferedAmount = 2 * 1024 * 1024;
  let flushed = false;
  const ok = transport.writeData(new Uint8Array([9, 9]), new Uint8Array([1, 2, 3]), () => (flushed = true));
  t.equal(ok, false, 'the writer is asked to wait');
  t.same(fake.sent.map((m) => [...m]), [[9, 9], [1, 2, 3]], 'head and payload both sent, in order');
  t.equal(flushed, true);
});

t.test('a WebSocket that closes before opening rejects the open with its code', async (t) => {
  let fake!: FakeWebSocket;
  const opening = webSocketOpener(() => (fake = new FakeWebSocket()))(target, new AbortController().signal);
  fake.onclose!({ code: 1006, reason: '' });
  await t.rejects(opening, { message: 'the WebSocket did not open (code 1006)' });
});
