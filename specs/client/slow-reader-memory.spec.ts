/**
 * A reader that lags behind a long transfer never lets the receive queue run empty (the sender
 * refills the window long before the last chunk is read). The chunks it has read must still be
 * freed: the process holds about a window, not the whole transfer. Checked by forcing a garbage
 * collection late in a 96 MiB transfer and reading the memory held by ArrayBuffers.
 */
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { generateIdentity, type ConnectOptions } from '../../actors/client/index.ts';
import { within } from '../helpers/wait.ts';
import { clientFor, openPair, relayFor } from './fixtures.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MIB = 1024 * 1024;
const TOTAL = 96 * MIB;
const SEND = 64 * 1024;
/** The reader takes a chunk only while at least this much is unread: the queue never empties. */
const LAG = 512 * 1024;
/** A 16 MiB window (MAX_WINDOW_BYTES) and the relay's and sockets' buffers, with room to spare. */
const HELD_LIMIT = 40 * MIB;

for (const e2e of [false, true]) {
  t.test(`${e2e ? 'e2e' : 'plaintext'}: a lagging reader holds about a window, not what it has read`, async (t) => {
    const relay = await relayFor(t);
    const options = (): ConnectOptions => (e2e ? { identity: generateIdentity(), e2e: true } : { identity: false });
    const receiver = await clientFor(t, relay, 11, options());
    const sender = await clientFor(t, relay, 12, options());
    const [a, b] = await openPair(receiver, sender, 4200);
    const block = new Uint8Array(SEND).map((_, i) => i & 0xff);
    const sending = (async () => {
      for (let sent = 0; sent < TOTAL; sent += SEND) await a.send(block);
      await a.end();
    })();
    let read = 0;
    let held: number | undefined;
    let wrong = 0;
    await within(
      'the lagging reader to read the whole transfer',
      (async () => {
        for (;;) {
          if (b.bufferedBytes < LAG && read + b.bufferedBytes < TOTAL) {
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          const chunk = await b.read();
          if (chunk === null) break;
          for (let i = 0; i < chunk.length; i += 4096) if (chunk[i] !== ((read + i) % SEND & 0xff)) wrong++;
          read += chunk.length;
          if (held === undefined && read >= 0.8 * TOTAL) {
            gc();
            held = process.memoryUsage().arrayBuffers;
          }
        }
      })(),
      120_000,
    );
    await sending;
    t.equal(read, TOTAL, 'every byte arrived');
    t.equal(wrong, 0, 'in order');
    t.ok(held !== undefined && held < HELD_LIMIT, `ArrayBuffers held after reading ${Math.round((0.8 * TOTAL) / MIB)} MiB: ${((held ?? 0) / MIB).toFixed(1)} MiB (limit ${HELD_LIMIT / MIB} MiB)`);
  });
}
