/**
 * Issue 9, finding 6: the text of a client's Error packet was logged in full (300 × 262 KB
 * Error packets grew the log by 79 MB in 2.5 s). Now an Error longer than the protocol allows
 * (2 + 512 bytes) is refused at its header, and the text of a valid one is cut at
 * maxLogFieldChars with a marker before it reaches a log line. A bystander pair keeps working.
 */
import { Writable } from 'node:stream';
import t from 'tap';
import { pino } from 'pino';
import { ErrorCode, PacketType, encodePacket } from '../../protocol/index.ts';
import { frameHeader, helloSocket, nextError } from '../helpers/raw-client.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';
import { Bystander } from '../helpers/bystander.ts';

/** A logger whose lines the spec can read. */
function capturingLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** An Error frame carrying `textBytes` bytes of text, however long (the encoder would cut it). */
function hugeError(textBytes: number): Uint8Array {
  const frame = new Uint8Array(5 + 2 + textBytes).fill(0x41);
  frame.set(frameHeader(PacketType.Error, 1 + 2 + textBytes));
  frame[5] = 0;
  frame[6] = 1;
  return frame;
}

t.test('Error packets with huge text are refused; valid ones are logged cut with a marker', async (t) => {
  const { logger, lines } = capturingLogger();
  const { relay } = await relayFixture(t, { logger, maxLogFieldChars: 100 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const HUGE = 300;
  const huge = await Promise.all(Array.from({ length: HUGE }, (_, i) => helloSocket(relay.port, `127.0.15.${(i % 10) + 1}`)));
  t.teardown(() => huge.forEach((s) => s.destroy()));
  const refusals = huge.map((s) => nextError(s, 15_000));
  for (const s of huge) s.write(hugeError(262_000));
  for (const error of await Promise.all(refusals)) t.equal(error.code, ErrorCode.MalformedFrame);
  await bystander.advance(3);

  const VALID = 20;
  const valid = await Promise.all(Array.from({ length: VALID }, (_, i) => helloSocket(relay.port, `127.0.16.${i + 1}`)));
  t.teardown(() => valid.forEach((s) => s.destroy()));
  const closed = valid.map((s) => new Promise((resolve) => s.once('close', resolve)));
  for (const s of valid) s.end(encodePacket({ type: PacketType.Error, code: 1, message: 'B'.repeat(512) }));
  await Promise.all(closed);
  await bystander.advance(3);
  await bystander.stop();

  const longest = Math.max(...lines.map((l) => l.length));
  t.ok(longest < 1024, `the longest log line is ${longest} characters`);
  const total = lines.reduce((sum, l) => sum + l.length, 0);
  t.ok(total < (HUGE + VALID) * 3 * 1024, `${total} characters of log for ${HUGE + VALID} attackers`);
  const sent = lines.filter((l) => l.includes('client sent Error'));
  t.equal(sent.length, VALID, 'each valid Error was logged');
  for (const line of sent) t.equal(JSON.parse(line).message, `${'B'.repeat(100)}…[truncated, 512 chars]`);
  t.equal(relay.counters.logFieldsTruncated, VALID);
});
