/**
 * Data as events: a listener that gathers 'data' until 'end' (or 'close') gets every byte. The
 * peer's last data and its end usually arrive in one read, and 'end' used to be emitted before
 * the 'data' of the chunks that came with it.
 */
import t, { type Test } from 'tap';
import { generateIdentity, type ConnectOptions, type VirtualConnection } from '../../actors/client/index.ts';
import { fileURLToPath } from 'node:url';
import { start } from '../helpers/child-process.ts';
import { within } from '../helpers/wait.ts';
import { clientFor, cuttableProxy, openPair, relayFor } from './fixtures.ts';

const CHILD = fileURLToPath(new URL('./throwing-listener.child.ts', import.meta.url));
const CLOSE_CHILD = fileURLToPath(new URL('./throwing-close-listener.child.ts', import.meta.url));

async function pair(t: Test, e2e: boolean, port: number): Promise<[VirtualConnection, VirtualConnection]> {
  const relay = await relayFor(t);
  const options = (): ConnectOptions => (e2e ? { identity: generateIdentity(), e2e: true } : { identity: false });
  const receiver = await clientFor(t, relay, 21, options());
  const sender = await clientFor(t, relay, 22, options());
  return openPair(receiver, sender, port);
}

/** What 'data' delivered by the time `event` came. */
function gatheredAt(conn: VirtualConnection, event: 'end' | 'close'): Promise<string> {
  const parts: Uint8Array[] = [];
  conn.on('data', (chunk) => parts.push(chunk));
  return new Promise((resolve) => conn.once(event, () => resolve(Buffer.concat(parts).toString())));
}

for (const e2e of [false, true]) {
  const mode = e2e ? 'e2e' : 'plaintext';
  t.test(`${mode}: 'end' comes after the 'data' sent before it`, async (t) => {
    const [a, b] = await pair(t, e2e, 4300);
    const atEnd = gatheredAt(b, 'end');
    // In one turn: both leave in one write and usually arrive in one read.
    void a.send('hello, ');
    void a.send('world');
    await a.end();
    t.equal(await within("the receiver's 'end'", atEnd, 15_000), 'hello, world');
  });

  t.test(`${mode}: 'close' comes after the 'data' sent before a close()`, async (t) => {
    const [a, b] = await pair(t, e2e, 4301);
    const atClose = gatheredAt(b, 'close');
    void a.send('last words');
    a.close();
    t.equal(await within("the receiver's 'close'", atClose, 15_000), 'last words');
  });
}

t.test("once('data') starts the flow too", async (t) => {
  const [a, b] = await pair(t, false, 4302);
  const first = new Promise<string>((resolve) => b.once('data', (chunk) => resolve(Buffer.from(chunk).toString())));
  await a.send('first');
  t.equal(await within("the 'data' of once()", first, 10_000), 'first');
});

t.test("a 'data' listener that throws: the error surfaces and the peer sees an abort, not a stall", async (t) => {
  const relay = await relayFor(t);
  const listenerClient = await clientFor(t, relay, 23, { identity: false });
  const socket = await listenerClient.listen(4303);
  const child = start(process.execPath, ['--import', 'tsx', CHILD, String(relay.port), listenerClient.virtualIp, '4303']);
  const conn = await within('the child to connect', socket.accept(), 30_000);
  const ready = await within('the child to say it is ready', conn.read(), 10_000);
  t.equal(Buffer.from(ready!).toString(), 'ready');
  const closed = new Promise<unknown>((resolve) => conn.once('close', resolve));
  await conn.send('trigger');
  t.match(await within('the connection to close', closed, 15_000), { code: 'ERR_CLOSED_BY_PEER' }, 'an abort (or the peer gone), never a stall');
  const ran = await child.exited(30_000);
  t.not(ran.code, 0, 'the child failed');
  t.match(ran.stderr, /listener boom/, "with the listener's error");
});

t.test("a 'close' listener that throws: the client's other connections are still failed when the relay is lost", async (t) => {
  const relay = await relayFor(t);
  const proxy = await cuttableProxy(t, relay);
  const listenerClient = await clientFor(t, relay, 24, { identity: false });
  const socket = await listenerClient.listen(4304);
  const child = start(process.execPath, ['--import', 'tsx', CLOSE_CHILD, String(proxy.port), listenerClient.virtualIp, '4304']);
  t.teardown(() => child.child.kill());
  await within('the child to accept twice', Promise.all([socket.accept(), socket.accept()]), 30_000);
  await child.waitFor(/ready/, 30_000);
  proxy.cut();
  await child.waitFor(/second closed ERR_RELAY_LOST/, 15_000);
  await child.waitFor(/uncaught close boom/, 15_000);
  t.pass("the second connection was failed, and the listener's error surfaced");
});
