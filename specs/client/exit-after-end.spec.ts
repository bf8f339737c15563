/**
 * Frames written in one turn leave together on the next tick (actors/client/tcp-transport.ts); a
 * process that exits in the turn of its last write must still get them out. A child connects,
 * sends, ends and calls process.exit(0) at once; the listener here reads every byte and a clean
 * end, in plaintext and end to end.
 */
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { generateIdentity } from '../../actors/client/index.ts';
import { start } from '../helpers/child-process.ts';
import { within } from '../helpers/wait.ts';
import { clientFor, readAll, relayFor } from './fixtures.ts';

const CHILD = fileURLToPath(new URL('./exit-after-end.child.ts', import.meta.url));

for (const mode of ['plain', 'e2e'] as const) {
  t.test(`${mode}: data and end written just before process.exit() arrive`, async (t) => {
    const relay = await relayFor(t);
    const listener = await clientFor(t, relay, 7, mode === 'e2e' ? { identity: generateIdentity(), e2e: true } : { identity: false });
    const socket = await listener.listen(4100);
    const child = start(process.execPath, ['--import', 'tsx', CHILD, String(relay.port), listener.virtualIp, '4100', mode]);
    const conn = await within('the child to connect', socket.accept(), 30_000);
    const bytes = await readAll(conn, 30_000);
    t.equal(Buffer.from(bytes).toString(), 'last words', 'every byte, then a clean end');
    const ran = await child.exited(30_000);
    t.equal(ran.code, 0, ran.stderr);
  });
}
