/**
 * A slow reader holds the writer back end to end: TCP client ← forward ← relay ← expose ←
 * target. Nothing on the way may buffer the whole stream.
 */
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import t from 'tap';
import { pseudoRandom } from '../client/fixtures.ts';
import { MIB, closeOf, portOf, tcpServer, tunnelTo } from './fixtures.ts';

const TOTAL_BYTES = 64 * MIB;
const CHUNK_BYTES = 1 * MIB;
/**
 * Most the target may get written while nobody reads: one flow-control window (1 MiB), the
 * streams' high-water marks and the kernel's loopback buffers of four TCP hops leave room for
 * a few MiB; far below the 64 MiB it tries to send.
 */
const STALL_BOUND_BYTES = 24 * MIB;
/** The writer counts as stalled after this many looks in a row without progress. */
const QUIET_LOOKS = 10;
const LOOK_INTERVAL_MS = 20;

t.test('a paused reader stalls a 64 MiB writer at a bounded amount, then every byte arrives', async (t) => {
  const base = pseudoRandom(64, CHUNK_BYTES);
  let written = 0;
  let waitingForDrain = false;
  let sentDigest: Promise<string> | undefined;
  const target = await tcpServer(t, (socket) => {
    sentDigest = (async () => {
      const hash = createHash('sha256');
      for (let i = 0; i < TOTAL_BYTES / CHUNK_BYTES; i++) {
        // Each chunk differs (its index up front), so reordering or loss changes the digest.
        const chunk = Buffer.from(base);
        chunk.writeUInt32BE(i, 0);
        hash.update(chunk);
        written += chunk.length;
        if (!socket.write(chunk)) {
          waitingForDrain = true;
          await once(socket, 'drain');
          waitingForDrain = false;
        }
      }
      socket.end();
      return hash.digest('hex');
    })();
  });
  const { forwarded, relay } = await tunnelTo(t, { host: '127.0.0.1', port: portOf(target) });
  const client = net.connect({ host: '127.0.0.1', port: forwarded.port, allowHalfOpen: true });
  const closed = closeOf(client);
  // Paused from the start: the socket fills its own buffer and then the kernel's, and stops.
  client.pause();
  await once(client, 'connect');
  client.end();

  // Wait until the writer is parked on 'drain' and its count stops moving. This is a quiescence
  // check, not a timing assertion: if anything buffered without bound, the writer would reach
  // 64 MiB instead of parking, and the bound below would fail.
  let quiet = 0;
  let last = -1;
  while (quiet < QUIET_LOOKS && written < TOTAL_BYTES) {
    await new Promise((resolve) => setTimeout(resolve, LOOK_INTERVAL_MS));
    quiet = waitingForDrain && written === last ? quiet + 1 : 0;
    last = written;
  }
  const stalledAt = written;
  const relayQueued = relay.status().clients.reduce((sum, c) => sum + c.queuedBytes, 0);
  t.comment(`writer stalled after ${(stalledAt / MIB).toFixed(1)} MiB of ${TOTAL_BYTES / MIB} MiB; relay queued ${relayQueued} bytes`);
  t.ok(stalledAt < STALL_BOUND_BYTES, `the writer stalled below ${STALL_BOUND_BYTES / MIB} MiB (${stalledAt} bytes)`);
  t.ok(relayQueued < 4 * MIB, 'the relay holds at most a few windows');

  // Resume: every byte arrives, in order.
  const hash = createHash('sha256');
  let received = 0;
  client.on('data', (c: Buffer) => {
    hash.update(c);
    received += c.length;
  });
  client.resume();
  await once(client, 'end');
  t.equal(received, TOTAL_BYTES);
  t.equal(hash.digest('hex'), await sentDigest, 'SHA-256 of all 64 MiB matches');
  t.equal(await closed, false, 'closed cleanly');
});
