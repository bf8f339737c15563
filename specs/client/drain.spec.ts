/**
 * Issue 15: `expose` with more than 10 connections printed MaxListenersExceededWarning, one
 * 'drain' listener per connection waiting on the shared relay connection. session.ts's
 * drained() now hands every waiter one shared promise; this holds 50 waiters at once.
 */
import t from 'tap';
import { INITIAL_WINDOW_BYTES } from '../../protocol/index.ts';
import type { VirtualConnection } from '../../actors/client/index.ts';
import { clientFor, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

const CONNECTIONS = 50;
/** One window each: credit never holds a send back, so every send waits on the relay connection. */
const BYTES_PER_CONNECTION = INITIAL_WINDOW_BYTES;
const WAIT_MS = 60_000;

t.test(`${CONNECTIONS} connections waiting for drain at once: no MaxListenersExceededWarning, bytes intact`, async (t) => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => void warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(7);

  const senders: VirtualConnection[] = [];
  const reads: Promise<string>[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const accepting = server.accept();
    senders.push(await b.connect({ address: a.virtualIp, port: 7 }));
    const accepted = await accepting;
    reads.push(readAll(accepted).then(sha256));
  }
  const payloads = senders.map((_, i) => pseudoRandom(1 + i, BYTES_PER_CONNECTION));

  // Every send starts in this one tick, before the relay (same process) reads anything: 50 MiB
  // against the kernel's buffer plus the session's 1 MiB high-water mark, so all but the first
  // few find the relay connection full and wait for its 'drain' together.
  const sending = senders.map(async (conn, i) => {
    await conn.send(payloads[i]);
    await conn.end();
  });
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the ${CONNECTIONS} transfers did not finish within ${WAIT_MS} ms`)), WAIT_MS);
  });
  const digests = await Promise.race([Promise.all(sending).then(() => Promise.all(reads)), guard]).finally(() => clearTimeout(timer));

  t.same(digests, payloads.map(sha256), 'every connection delivered its own bytes intact');
  // Node emits the warning on a later tick than the listener that crossed the limit.
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.same(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
    [],
    'no MaxListenersExceededWarning from the shared relay connection',
  );
});
