import t from 'tap';
import { EventEmitter } from 'eventemitter3';
import { PassThrough, Writable } from 'node:stream';
import { createLogger, logDrops } from '../actors/logger.ts';
import { createRelayMetrics } from '../observe/metrics.ts';
import type { RelayBus, RelayBusEvents } from '../actors/relay/relay-events.ts';

t.test('a stderr whose reader has gone (EPIPE) ends logging quietly, and the dropped lines are counted', async (t) => {
  const stream = new Writable({
    write(_chunk, _encoding, callback) {
      callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    },
  });
  const logger = createLogger({ stream, level: 'info' });
  const failed = new Promise((resolve) => stream.once('error', resolve));
  logger.info('first line meets EPIPE');
  await failed;
  t.doesNotThrow(() => {
    for (let i = 0; i < 3; i++) logger.info({ i }, 'after the pipe broke');
  }, 'logging after EPIPE neither throws nor crashes');
  t.same(logDrops(logger), { queueFull: 0, streamClosed: 3 });

  const metrics = createRelayMetrics({ bus: new EventEmitter<RelayBusEvents>() as RelayBus, defaultMetrics: false, logDrops: () => logDrops(logger) });
  t.teardown(() => metrics.close());
  t.match(await metrics.metrics(), /alphanet_log_lines_dropped_total\{reason="closed"\} 3\n/);
});

t.test('lines beyond the queue cap of a stalled stderr are dropped, not queued', async (t) => {
  // Nobody reads this stream: everything written stays in its queue.
  const stream = new PassThrough({ highWaterMark: 16 });
  const logger = createLogger({ stream, level: 'info', maxQueuedBytes: 1024 });
  for (let i = 0; i < 200; i++) logger.info({ i }, 'a line of about eighty bytes of JSON');
  t.ok(stream.writableLength <= 1024 + 200, `queued ${stream.writableLength} bytes, within the cap plus one line`);
  t.ok(logDrops(logger).queueFull > 150, `${logDrops(logger).queueFull} lines dropped`);
});
