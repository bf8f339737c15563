/**
 * The CI slice of `npm run fuzz`'s model half: a few hundred command sequences (bind, unbind,
 * status, connect, accept/deny, spoofed answers, data of random sizes, window updates, end,
 * close, malformed frames, disconnect/reconnect) from three raw-protocol clients on 127.0.0.2
 * and 127.0.0.3 against a real relay on loopback, each checked against the model. Fixed seed
 * for repeatable CI; FUZZ_SEED picks another.
 */
import t from 'tap';
import fc from 'fast-check';
import { HarnessPool, relayModelProperty } from '../../fuzz/relay-commands.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const CASES = 300;

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
