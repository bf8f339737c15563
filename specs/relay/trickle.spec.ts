/**
 * Issue 9, finding 1: ArbitraryData frames trickled a byte at a time. They used to cost a slice
 * object per byte and each byte counted as life, so a trickling connection lived forever. Now
 * a frame must complete within the frame timeout, only a completed frame is life, and the bytes
 * of incomplete frames are bounded per host and relay-wide. A bystander pair keeps exchanging
 * data throughout.
 */
import net from 'node:net';
import t from 'tap';
import { ErrorCode, PacketType } from '../../protocol/index.ts';
import { frameHeader, helloSocket, nextError } from '../helpers/raw-client.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';
import { Bystander } from '../helpers/bystander.ts';

const FULL_FRAME = 256 * 1024;

/** Writes the header of a full-size data frame, then one byte every `everyMs` until stopped. */
function trickle(socket: net.Socket, everyMs: number): () => void {
  socket.write(frameHeader(PacketType.ArbitraryData, FULL_FRAME));
  socket.write(new Uint8Array([0, 0, 0, 1])); // its connection id
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(new Uint8Array([0x55]));
  }, everyMs);
  return () => clearInterval(timer);
}

t.test('a frame trickled a byte at a time is closed at the frame timeout; bystanders keep working', async (t) => {
  const { relay } = await relayFixture(t, { frameTimeoutMs: 1_500 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const CONNECTIONS = 16;
  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => helloSocket(relay.port, `127.0.1.${i + 1}`)));
  const stops = sockets.map((s) => trickle(s, 20));
  t.teardown(() => {
    for (const stop of stops) stop();
    for (const s of sockets) s.destroy();
  });
  const errors = sockets.map((s) => nextError(s, 15_000));
  await bystander.advance(3);
  t.ok(relay.counters.partialFrameBytes > 0, 'the trickled bytes are counted as incomplete-frame bytes');
  t.ok(relay.counters.partialFrameBytes <= CONNECTIONS * FULL_FRAME, 'and no more than arrived');
  for (const error of await Promise.all(errors)) t.equal(error.code, ErrorCode.FrameTimeout);
  t.equal(relay.counters.frameTimeouts, CONNECTIONS, 'every trickler was closed for its frame');
  await bystander.advance(3);
  t.ok((await bystander.stop()) >= 6, 'the bystander pair exchanged data during the attack');
  for (const s of sockets) if (!s.destroyed) await new Promise((resolve) => s.once('close', resolve));
  t.equal(relay.counters.partialFrameBytes, 0, 'nothing is kept for closed connections');
});

t.test('trickled bytes are not life: a trickler that answers no Ping is dropped at the keepalive timeout', async (t) => {
  const { relay } = await relayFixture(t, { frameTimeoutMs: 60_000, keepaliveIntervalMs: 300, keepaliveTimeoutMs: 1_500 });
  const socket = await helloSocket(relay.port, '127.0.1.1');
  const stop = trickle(socket, 50);
  t.teardown(() => {
    stop();
    socket.destroy();
  });
  const error = await nextError(socket, 15_000);
  t.equal(error.code, ErrorCode.KeepaliveTimeout, 'a byte every 50 ms did not count as a sign of life');
});

t.test('incomplete frames past the per-host budget stop being read; others are read on', async (t) => {
  const BUDGET = 64 * 1024;
  const { relay } = await relayFixture(t, { maxPartialFrameBytesPerHost: BUDGET, frameTimeoutMs: 2_000 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const CONNECTIONS = 8;
  // All from one real IP: one host's budget.
  const sockets = await Promise.all(Array.from({ length: CONNECTIONS }, () => helloSocket(relay.port, '127.0.2.1')));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const errors = sockets.map((s) => nextError(s, 15_000));
  const SENT_EACH = 200 * 1024;
  for (const s of sockets) {
    s.write(frameHeader(PacketType.ArbitraryData, FULL_FRAME));
    s.write(new Uint8Array(4));
    for (let sent = 0; sent < SENT_EACH; sent += 8 * 1024) s.write(new Uint8Array(8 * 1024));
  }
  await bystander.advance(3);
  t.ok(relay.counters.partialFramePauses > 0, 'connections were held back by the budget');
  // Each connection may overshoot by one TCP read (64 KiB) before it is paused.
  const bound = BUDGET + CONNECTIONS * 64 * 1024;
  t.ok(relay.counters.partialFrameBytes <= bound, `${relay.counters.partialFrameBytes} bytes kept, at most ${bound}`);
  t.ok(relay.counters.partialFrameBytes < CONNECTIONS * SENT_EACH, 'not everything sent was read');
  for (const error of await Promise.all(errors)) t.equal(error.code, ErrorCode.FrameTimeout);
  await bystander.advance(3);
  await bystander.stop();
  for (const s of sockets) if (!s.destroyed) await new Promise((resolve) => s.once('close', resolve));
  t.equal(relay.counters.partialFrameBytes, 0, 'the budget is free again');
});
