/** nc's progress line (only on a terminal, only for long transfers, a few times a second) and its summary. */
import t from 'tap';
import { formatBytes, PROGRESS_AFTER_MS, PROGRESS_INTERVAL_MS, TransferMeter } from '../../cli/transfer-meter.ts';

function fakeStderr(isTTY: boolean) {
  const written: string[] = [];
  return { stream: { isTTY, write: (text: string) => written.push(text) }, written };
}

t.test('on a terminal: no progress before PROGRESS_AFTER_MS, then at most one line per PROGRESS_INTERVAL_MS, rewritten in place', async (t) => {
  let now = 0;
  const { stream, written } = fakeStderr(true);
  const meter = new TransferMeter(stream, () => now);
  meter.sent = 1024;
  now = PROGRESS_AFTER_MS - 1;
  meter.tick();
  t.same(written, [], 'a short transfer shows nothing');
  now = PROGRESS_AFTER_MS;
  meter.tick();
  t.equal(written.length, 1);
  t.equal(written[0], '\r\x1b[K1.0 KiB sent, 0 B received, 1.0 KiB/s');
  now += PROGRESS_INTERVAL_MS - 1;
  meter.received = 3 * 1024 * 1024;
  meter.tick();
  t.equal(written.length, 1, 'not redrawn sooner than the interval');
  now += 1;
  meter.tick();
  t.equal(written.length, 2);
  t.match(written[1], /^\r\x1b\[K1\.0 KiB sent, 3\.0 MiB received, \d\.\d MiB\/s$/);
  now = 2_000;
  meter.finish();
  t.equal(written[2], '\r\x1b[Knc: 1024 bytes sent, 3145728 bytes received in 2.00 s (1.5 MiB/s)\n', 'the progress line is cleared, the summary takes its place');
});

t.test('not a terminal: never a progress line, only the summary', async (t) => {
  let now = 0;
  const { stream, written } = fakeStderr(false);
  const meter = new TransferMeter(stream, () => now).start();
  meter.sent = 10;
  for (now = 0; now < 10_000; now += 100) meter.tick();
  now = 10_000;
  meter.finish();
  t.same(written, ['nc: 10 bytes sent, 0 bytes received in 10.00 s (1 B/s)\n']);
});

t.test('formatBytes', async (t) => {
  t.equal(formatBytes(0), '0 B');
  t.equal(formatBytes(1023), '1023 B');
  t.equal(formatBytes(1536), '1.5 KiB');
  t.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
});
