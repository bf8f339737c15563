/**
 * Windows that grow (docs/PROTOCOL.md §7): a receiver may grant credit up to MAX_WINDOW_BYTES per
 * direction, not beyond; credit above the initial windows comes out of a relay-wide budget, and
 * what does not fit is held at the relay and passed on as data makes room.
 */
import t from 'tap';
import { CloseReason, INITIAL_WINDOW_BYTES, MAX_WINDOW_BYTES, PacketType, encodeArbitraryData } from '../../protocol/index.ts';
import { DEFAULT_WINDOW_BUDGET_BYTES, WindowBudget } from '../../actors/relay/window-budget.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { pairUp, relayFixture } from '../helpers/relay-fixture.ts';

const MIB = 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024);

function sendData(client: RawClient, connectionId: number, bytes: number): void {
  for (let sent = 0; sent < bytes; sent += CHUNK.length) client.send(encodeArbitraryData(connectionId, CHUNK));
}

/** Sums the WindowUpdates `client` receives for `connectionId` until they reach `total`. */
async function creditOf(client: RawClient, connectionId: number, total: number): Promise<number> {
  let sum = 0;
  while (sum < total) {
    const update = await client.next(PacketType.WindowUpdate, 10_000);
    if (update.connectionId === connectionId) sum += update.bytes;
  }
  return sum;
}

t.test('a receiver may grow the credit it grants to MAX_WINDOW_BYTES, and the sender may use all of it', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  const { client: b, virtualIp: bIp } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, aIp.ip, b, bIp.ip, 80);
  b.send({ type: PacketType.WindowUpdate, connectionId, bytes: MAX_WINDOW_BYTES - INITIAL_WINDOW_BYTES });
  t.equal(await creditOf(a, connectionId, MAX_WINDOW_BYTES - INITIAL_WINDOW_BYTES), MAX_WINDOW_BYTES - INITIAL_WINDOW_BYTES, 'the grant is forwarded whole');
  b.collect = true;
  let got = 0;
  const all = new Promise<void>((resolve) => {
    b.onData = (_id, data) => {
      got += data.length;
      if (got === MAX_WINDOW_BYTES) resolve();
    };
  });
  sendData(a, connectionId, MAX_WINDOW_BYTES);
  await all;
  t.equal(got, MAX_WINDOW_BYTES, 'a whole grown window of data arrives');
  t.equal(relay.status().pairs.length, 1, 'the pair is still open');
});

t.test('credit past MAX_WINDOW_BYTES, counting what the receiver granted before, closes the pair', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  const { client: b, virtualIp: bIp } = await open('127.0.0.3');
  const { connectionId } = await pairUp(a, aIp.ip, b, bIp.ip, 80);
  b.send({ type: PacketType.WindowUpdate, connectionId, bytes: 8 * MIB });
  await creditOf(a, connectionId, 8 * MIB);
  b.send({ type: PacketType.WindowUpdate, connectionId, bytes: MAX_WINDOW_BYTES - INITIAL_WINDOW_BYTES - 8 * MIB + 1 });
  t.equal((await a.next(PacketType.SocketClosed)).reason, CloseReason.FlowControlViolation);
  t.equal((await b.next(PacketType.SocketClosed)).reason, CloseReason.FlowControlViolation);
});

t.test('the relay-wide budget holds back credit that does not fit, and passes it on as data makes room', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: aIp } = await open('127.0.0.2');
  const { client: b, virtualIp: bIp } = await open('127.0.0.3');
  const growth = MAX_WINDOW_BYTES - INITIAL_WINDOW_BYTES;
  const fitting = Math.floor(DEFAULT_WINDOW_BUDGET_BYTES / growth);
  const ids: number[] = [];
  for (let i = 0; i <= fitting; i++) ids.push((await pairUp(a, aIp.ip, b, bIp.ip, 1000 + i)).connectionId);
  for (const id of ids) b.send({ type: PacketType.WindowUpdate, connectionId: id, bytes: growth });
  const last = ids[fitting];
  const forwarded = new Map<number, number>();
  let total = 0;
  const expected = DEFAULT_WINDOW_BUDGET_BYTES;
  while (total < expected) {
    const update = await a.next(PacketType.WindowUpdate, 10_000);
    forwarded.set(update.connectionId, (forwarded.get(update.connectionId) ?? 0) + update.bytes);
    total += update.bytes;
  }
  t.equal(total, expected, 'all pairs together got exactly the budget above their initial windows');
  t.equal(forwarded.get(last), DEFAULT_WINDOW_BUDGET_BYTES - fitting * growth, 'the last pair got only what was left');
  // A spends 1 MiB on the last pair: its credit above the initial window frees 1 MiB of budget,
  // which the relay hands on from what it holds for that pair.
  b.collect = true;
  sendData(a, last, MIB);
  t.equal(await creditOf(a, last, MIB), MIB, 'held credit passed on as data made room');
});

t.test('WindowBudget: free up to the initial window, budgeted above it, held credit released, forget returns it', async (t) => {
  const budget = new WindowBudget(4 * MIB);
  // Below the initial window nothing is budgeted.
  t.equal(budget.grant(1, 0, 0, MIB), MIB);
  t.equal(budget.usedBytes, 0);
  // At the initial window, a grant comes out of the budget; past the budget it is held.
  t.equal(budget.grant(1, 0, MIB, 3 * MIB), 3 * MIB);
  t.equal(budget.usedBytes, 3 * MIB);
  t.equal(budget.grant(2, 1, MIB, 2 * MIB), MIB, 'only the rest of the budget passes');
  t.equal(budget.heldBytes(2, 1), MIB);
  t.equal(budget.usedBytes, 4 * MIB);
  // Pair 1 spends 2 MiB (4 → 2 MiB of credit): 2 MiB of budget come back; pair 2 is not pair 1.
  t.equal(budget.spent(1, 0, 4 * MIB, 2 * MIB), 0);
  t.equal(budget.usedBytes, 2 * MIB);
  // Pair 2 spends 64 KiB: its held MiB now fits.
  t.equal(budget.spent(2, 1, 2 * MIB, 64 * 1024), MIB);
  t.equal(budget.heldBytes(2, 1), 0);
  t.equal(budget.usedBytes, 2 * MIB - 64 * 1024 + MIB);
  budget.forget(1, 2 * MIB, 0);
  budget.forget(2, 0, 3 * MIB - 64 * 1024);
  t.equal(budget.usedBytes, 0, 'every byte of budget came back');
  // With the budget full, a direction below its initial window still gets up to it.
  const full = new WindowBudget(0);
  t.equal(full.grant(3, 0, MIB / 2, MIB), MIB / 2);
  t.equal(full.spent(3, 0, MIB, MIB / 4), MIB / 4, 'held credit refills to the initial window as data passes');
});
