/**
 * `--inspect` says what it is doing: once when it reaches the inspector, once per outage when it
 * cannot (URL and reason, not once per retry), and when it loses it. A real WebSocket server on
 * loopback plays the inspector; a TCP server that drops every connection plays one that is down.
 */
import net from 'node:net';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { WebSocketServer } from 'ws';
import { createLogger } from '../../actors/logger.ts';
import { createWebSocketInspection, DEFAULT_INSPECT_URL, INSPECT_RECONNECT_DELAY_MS } from '../../observe/inspect.ts';
import { freePort } from '../cli/relay-process.ts';
import { within } from '../helpers/wait.ts';

/** Log lines as they arrive, and a way to wait for one. */
function captureLog() {
  const stream = new PassThrough();
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<() => void> = [];
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    for (const wake of waiters.splice(0)) wake();
  });
  const count = (msg: string): number => lines.filter((l) => l.msg === msg).length;
  const next = (msg: string, n = 1): Promise<void> =>
    within(
      `log line "${msg}" #${n}`,
      new Promise<void>((resolve) => {
        const check = (): void => (count(msg) >= n ? resolve() : void waiters.push(check));
        check();
      }),
      INSPECT_RECONNECT_DELAY_MS * 4,
    );
  return { logger: createLogger({ stream, level: 'info' }), lines, count, next };
}

/** A TCP server on `port` that drops every connection, counting them: an inspector that is down. */
async function refuser(port: number) {
  let dials = 0;
  const waiters: Array<() => void> = [];
  const server = net.createServer((socket) => {
    dials++;
    socket.destroy();
    for (const wake of waiters.splice(0)) wake();
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const dialled = (n: number): Promise<void> =>
    within(
      `${n} dials of the inspector`,
      new Promise<void>((resolve) => {
        const check = (): void => (dials >= n ? resolve() : void waiters.push(check));
        check();
      }),
      INSPECT_RECONNECT_DELAY_MS * 4,
    );
  return { dialled, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

t.test('the default inspector URL is on this machine, not on a web server port', async (t) => {
  t.equal(DEFAULT_INSPECT_URL, 'ws://127.0.0.1:1338');
});

t.test('cannot reach: said once for several failed dials; reached: said once; lost: said once', async (t) => {
  const port = await freePort();
  const url = `ws://127.0.0.1:${port}`;
  const log = captureLog();
  const down = await refuser(port);
  const inspection = createWebSocketInspection({ url, logger: log.logger });
  t.teardown(() => inspection.stop());

  await down.dialled(2);
  await log.next('cannot reach the inspector; dialling again until it answers');
  t.equal(log.count('cannot reach the inspector; dialling again until it answers'), 1, 'one line for two failed dials');
  t.match(log.lines.find((l) => l.msg === 'cannot reach the inspector; dialling again until it answers'), { level: 40, url, reason: String });
  await down.close();

  const inspector = new WebSocketServer({ port, host: '127.0.0.1' });
  t.teardown(() => new Promise<void>((resolve) => inspector.close(() => resolve())));
  await log.next('connected to the inspector');
  t.match(log.lines.find((l) => l.msg === 'connected to the inspector'), { level: 30, url });

  // The inspector goes away: lost, said once, however many dials fail after it.
  for (const client of inspector.clients) client.terminate();
  await new Promise<void>((resolve) => inspector.close(() => resolve()));
  const downAgain = await refuser(port);
  t.teardown(() => downAgain.close());
  await log.next('lost the inspector; dialling again');
  await downAgain.dialled(2);
  t.equal(log.count('lost the inspector; dialling again'), 1);
  t.equal(log.count('cannot reach the inspector; dialling again until it answers'), 1, 'the outage after a loss is not said again');
  t.equal(log.count('connected to the inspector'), 1);
});
