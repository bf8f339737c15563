/**
 * VirtualConnection.sendPieces (actors/client/connection.ts), the path end-to-end records take
 * (head, ciphertext, tag written without joining them): the receiver gets exactly the pieces'
 * concatenation, in order with send() calls around it, and the window holds it back like send().
 */
import t from 'tap';
import { waitFor, within } from '../helpers/wait.ts';
import { clientFor, openPair, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

const MIB = 1024 * 1024;

/** `bytes` cut into pieces of uneven sizes (some empty, some one byte, some over a frame). */
function cut(bytes: Uint8Array, seed: number): Uint8Array[] {
  const sizes = [0, 1, 4, 65536, 16, 3, 300_000, 0, 70_001, 9];
  const pieces: Uint8Array[] = [];
  let offset = 0;
  for (let i = seed; offset < bytes.length; i++) {
    const n = Math.min(sizes[i % sizes.length], bytes.length - offset);
    pieces.push(bytes.subarray(offset, offset + n));
    offset += n;
  }
  return pieces;
}

t.test('pieces arrive as their concatenation, in order with send() around them, past the window', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2, { e2e: false });
  const b = await clientFor(t, relay, 3, { e2e: false });
  const [conn, accepted] = await openPair(a, b, 9);
  // 3 MiB of pieces: more than the initial 1 MiB window, so frames end at window edges inside pieces.
  const first = pseudoRandom(1, 100_000);
  const middle = pseudoRandom(2, 3 * MIB);
  const last = pseudoRandom(3, 50_000);
  const reading = readAll(accepted);
  const sends = [conn.send(first), conn.sendPieces(cut(middle, 0)), conn.sendPieces(cut(pseudoRandom(4, 1000), 3)), conn.send(last)];
  await Promise.all(sends);
  await conn.end();
  const got = await reading;
  const expected = Buffer.concat([first, middle, pseudoRandom(4, 1000), last]);
  t.equal(got.length, expected.length, 'every byte arrives');
  t.equal(sha256(got), sha256(expected), 'in order, intact');
});

t.test('sendPieces waits for the window like send(): a reader that stops holds it back', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2, { e2e: false });
  const b = await clientFor(t, relay, 3, { e2e: false });
  const [conn, accepted] = await openPair(a, b, 9);
  let settled = false;
  const sent = conn.sendPieces(cut(pseudoRandom(5, 3 * MIB), 1)).then(() => (settled = true));
  // Nobody reads: the sender runs out of window (1 MiB) and waits for credit.
  await waitFor(() => conn.sendsAwaitCredit, 'the sender running out of window');
  t.notOk(settled, 'sendPieces has not resolved while the window is closed');
  const got = await within(
    'reading 3 MiB',
    (async () => {
      let total = 0;
      while (total < 3 * MIB) {
        const chunk = await accepted.read();
        if (chunk === null) break;
        total += chunk.length;
      }
      return total;
    })(),
    30_000,
  );
  await sent;
  t.equal(got, 3 * MIB, 'once the reader reads, it all arrives and sendPieces resolves');
});
