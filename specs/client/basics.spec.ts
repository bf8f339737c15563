import t from 'tap';
import { clientFor, readAll, relayFor } from './fixtures.ts';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

t.test('connect gives a virtual IP and the actor is connected', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  t.match(a.virtualIp, /^10\.0\.\d+\.\d+$/);
  t.equal(a.state, 'connected');
  t.equal(a.actor.getSnapshot().context.virtualIp, a.virtualIp);
  await a.close();
  t.equal(a.state, 'closed');
  // Same real IP again: the same permanent virtual IP.
  const again = await clientFor(t, relay, 2);
  t.equal(again.virtualIp, a.virtualIp);
  const b = await clientFor(t, relay, 3);
  t.not(b.virtualIp, a.virtualIp);
});

t.test('echo between two clients, with half-close', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(7);
  t.equal(server.state, 'listening');
  const served = (async () => {
    const conn = await server.accept();
    t.equal(conn.remoteAddress, b.virtualIp);
    const got = await readAll(conn);
    await conn.send(text(`echo:${str(got)}`));
    await conn.end();
    return conn;
  })();
  const conn = await b.connect({ address: a.virtualIp, port: 7 });
  t.equal(conn.remoteAddress, a.virtualIp);
  t.same(conn.actor.getSnapshot().value, { connected: 'open' });
  await conn.send(text('hello'));
  await conn.end();
  t.same(conn.actor.getSnapshot().value, { connected: 'writeEnded' });
  t.equal(str(await readAll(conn)), 'echo:hello');
  const accepted = await served;
  t.ok(conn.closed);
  t.ok(accepted.closed);
  t.equal(conn.actor.getSnapshot().value, 'closed');
});
