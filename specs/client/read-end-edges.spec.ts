/**
 * Edges of reading and ending that hung or misreported: two reads waiting at once both settle; a
 * second end() settles with the first; end() after the relay is lost fails rather than claiming
 * the end was delivered.
 */
import t from 'tap';
import { generateIdentity, type ConnectOptions } from '../../actors/client/index.ts';
import { within } from '../helpers/wait.ts';
import { clientFor, cuttableProxy, openPair, relayFor } from './fixtures.ts';

for (const e2e of [false, true]) {
  const mode = e2e ? 'e2e' : 'plaintext';
  const options = (): ConnectOptions => (e2e ? { identity: generateIdentity(), e2e: true } : { identity: false });

  t.test(`${mode}: two reads waiting at once both get a chunk`, async (t) => {
    const relay = await relayFor(t);
    const receiver = await clientFor(t, relay, 41, options());
    const sender = await clientFor(t, relay, 42, options());
    const [a, b] = await openPair(receiver, sender, 4500);
    const reads = Promise.all([b.read(), b.read()]);
    await a.send('one');
    // The second chunk goes in a later turn, so the first read takes 'one' alone.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await a.send('two');
    const got = await within('both reads to settle', reads, 10_000);
    t.same(got.map((c) => Buffer.from(c!).toString()).sort(), ['one', 'two']);
  });

  t.test(`${mode}: end() after the relay is lost fails; a second end() settles with the first`, async (t) => {
    const relay = await relayFor(t);
    const proxy = await cuttableProxy(t, relay);
    const receiver = await clientFor(t, relay, 43, options());
    const sender = await clientFor(t, proxy, 44, { ...options(), reconnect: false });
    const listener = await receiver.listen(4501);
    const accepted = listener.accept();
    const a = await sender.connect({ address: receiver.virtualIp, port: 4501 });
    await accepted;
    const first = a.end();
    const second = a.end();
    await within('end()', first, 10_000);
    await within('the second end()', second, 10_000);
    t.pass('both settle once SocketEnd is written');

    const c = await sender.connect({ address: receiver.virtualIp, port: 4501 });
    await listener.accept();
    // Data held back by the window: end() waits behind it, and the relay is lost meanwhile.
    const big = c.send(new Uint8Array(8 * 1024 * 1024)).catch((error: unknown) => error);
    const ending = c.end();
    proxy.cut();
    await t.rejects(within('end() on a lost relay', ending, 10_000), { code: 'ERR_RELAY_LOST' });
    await big;
  });
}

t.test('plaintext: close() with a send still waiting for credit is an abort at the peer, not a clean end', async (t) => {
  const relay = await relayFor(t);
  const receiver = await clientFor(t, relay, 45, { identity: false });
  const sender = await clientFor(t, relay, 46, { identity: false });
  const [a, b] = await openPair(receiver, sender, 4502);
  // 8 MiB against a 1 MiB window: most of it is still waiting when close() is called.
  const sending = a.send(new Uint8Array(8 * 1024 * 1024)).catch((error: unknown) => error);
  a.close();
  let got = 0;
  const reading = (async () => {
    for await (const chunk of b) got += chunk.length;
  })();
  await t.rejects(within("the peer's reads", reading, 10_000), { code: 'ERR_CLOSED_BY_PEER', message: /aborted/ }, `the peer got ${got} bytes and no clean end`);
  await sending;
});

t.test('a connect given up before the target accepts leaves no open pair: the accepted end is closed', async (t) => {
  const relay = await relayFor(t);
  const target = await clientFor(t, relay, 47, { identity: false });
  const connector = await clientFor(t, relay, 48, { identity: false });
  const listener = await target.listen(4503, { accept: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 300)) });
  const accepted = listener.accept();
  await t.rejects(connector.connect({ address: target.virtualIp, port: 4503, signal: AbortSignal.timeout(50) }));
  const conn = await within('the target to accept', accepted, 10_000);
  const closed = conn.closed ? Promise.resolve() : new Promise<void>((resolve) => conn.once('close', () => resolve()));
  await within("the abandoned pair's close to reach the target", closed, 5_000);
  t.pass('closed at once, not left for the idle timeout');
});

t.test("a connect past the client's request timeout leaves no open pair when the target accepts late", async (t) => {
  const relay = await relayFor(t);
  const target = await clientFor(t, relay, 49, { identity: false });
  const connector = await clientFor(t, relay, 50, { identity: false, requestTimeoutMs: 100 });
  const listener = await target.listen(4504, { accept: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 400)) });
  const accepted = listener.accept();
  await t.rejects(connector.connect({ address: target.virtualIp, port: 4504 }), { code: 'ERR_TIMEOUT' });
  const conn = await within('the target to accept', accepted, 10_000);
  const closed = conn.closed ? Promise.resolve() : new Promise<void>((resolve) => conn.once('close', () => resolve()));
  await within("the late pair's close to reach the target", closed, 5_000);
  t.pass('closed at once, not left for the idle timeout');
});
