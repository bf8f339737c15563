/**
 * The CI slice of `npm run fuzz`'s model half: a few hundred command sequences (bind, unbind,
 * status, connect, accept/deny, spoofed answers, data of random sizes, window updates, end,
 * close, malformed frames, disconnect/reconnect) from three raw-protocol clients on 127.0.0.2
 * and 127.0.0.3 against a real relay on loopback, each checked against the model. Fixed seed
 * for repeatable CI; FUZZ_SEED picks another.
 */
import t from 'tap';
import fc from 'fast-check';
import type { CommandData } from '../../fuzz/relay-command-data.ts';
import { HarnessPool, RelayCommand, relayModelProperty, runSequence } from '../../fuzz/relay-property.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const CASES = 200;

t.test('the relay answers every command sequence as the model predicts', async (t) => {
  const pool = new HarnessPool();
  t.teardown(() => pool.close());
  const details = await fc.check(relayModelProperty(pool), { numRuns: CASES, seed: SEED });
  const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  t.notOk(details.failed, details.failed ? `${error}\n${String(details.counterexample)}\nseed ${details.seed} path ${details.counterexamplePath}` : `${details.numRuns} sequences`);
  t.equal(details.numRuns, CASES, 'every case ran');
  // The slice must reach the data path and the handshake, not stop at the relay's first checks.
  for (const type of ['ArbitraryData', 'SocketConnectionRequest', 'SocketConnectionResponse', 'SocketEnd', 'WindowUpdate', 'Error', 'RequestFailed']) {
    t.ok((pool.seen.get(type) ?? 0) > 0, `${type} was exercised (${pool.seen.get(type) ?? 0} checked)`);
  }
});

t.test('a recorded command list replays through the harness (the path fixtures take)', async (t) => {
  const pool = new HarnessPool();
  t.teardown(() => pool.close());
  const commands: CommandData[] = [
    { kind: 'openPair', slot: 0, target: 1, i: 0 },
    { kind: 'data', slot: 0, pair: { from: 'own', i: 0 }, sizes: [1, 70_000, 0], seed: 7, cuts: [3, 9, 1000] },
    { kind: 'window', slot: 1, pair: { from: 'own', i: 0 }, grant: 'all', bytes: 0 },
    { kind: 'end', slot: 0, pair: { from: 'own', i: 0 } },
    { kind: 'data', slot: 1, pair: { from: 'own', i: 0 }, sizes: [5], seed: 8, cuts: [] },
    { kind: 'end', slot: 1, pair: { from: 'own', i: 0 } },
    { kind: 'malformed', slot: 2, shape: 'unknownType', n: 3, tail: [1, 2, 3] },
    { kind: 'reconnect', slot: 2, hello: 'ok', n: 0 },
  ];
  await runSequence(pool, commands.map((d) => new RelayCommand(d)));
  t.equal(pool.seen.get('ArbitraryData'), 4, 'four data frames delivered and checked');
  t.equal(pool.seen.get('SocketEnd'), 2, 'SocketEnd passed both ways');
  t.equal(pool.seen.get('Error'), 1, 'the malformed frame got its sender one Error');
});
