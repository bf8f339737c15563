import t from 'tap';
import { clientFor, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

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
  t.equal(conn.state, 'connected.open', 'the full dotted name of a nested state');
  await conn.send(text('hello'));
  await conn.end();
  t.same(conn.actor.getSnapshot().value, { connected: 'writeEnded' });
  t.equal(conn.state, 'connected.writeEnded');
  t.equal(str(await readAll(conn)), 'echo:hello');
  const accepted = await served;
  t.ok(conn.closed);
  t.ok(accepted.closed);
  t.equal(conn.actor.getSnapshot().value, 'closed');
  t.equal(conn.state, 'closed');
});

t.test('the exposed actors are read-only views: snapshot and subscribe, no send', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(7);
  const accepting = server.accept();
  const conn = await b.connect({ address: a.virtualIp, port: 7 });
  const accepted = await accepting;
  for (const [name, view] of [['client', a.actor], ['socket', server.actor], ['connection', conn.actor], ['accepted', accepted.actor]] as const) {
    t.equal((view as unknown as { send?: unknown }).send, undefined, `${name}.actor has no send()`);
    t.ok(Object.isFrozen(view), `${name}.actor cannot be given one`);
    t.type(view.id, 'string', `${name}.actor has its id`);
  }
  const states: string[] = [];
  const sub = conn.actor.subscribe((s) => states.push(JSON.stringify(s.value)));
  await conn.end();
  sub.unsubscribe();
  t.same(states, ['{"connected":"ending"}', '{"connected":"writeEnded"}'], 'subscribe() sees the machine move');
  t.equal(conn.actor.getSnapshot().status, 'active');
  accepted.close();
  await new Promise<void>((resolve) => (conn.closed ? resolve() : conn.once('close', () => resolve())));
  t.equal(conn.actor.getSnapshot().status, 'done');
});

t.test('send() takes a string as UTF-8 (multi-byte characters intact) and refuses anything else with ERR_INVALID_ARGUMENT', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(7);
  const accepting = server.accept();
  const conn = await b.connect({ address: a.virtualIp, port: 7 });
  const accepted = await accepting;
  // 2-, 3- and 4-byte sequences, and a character that a split send could cut.
  const message = 'héllo — 世界 🚀 ünïcödé';
  for (const bad of [42, undefined, null, { length: 3 }, [1, 2, 3], new ArrayBuffer(3), new DataView(new ArrayBuffer(3))]) {
    const error = await conn.send(bad as unknown as string).then(() => undefined, (e: unknown) => e);
    t.match(error, { name: 'ClientError', code: 'ERR_INVALID_ARGUMENT', message: /send\(\) takes a Uint8Array or a string/ }, `refuses ${String(bad)}`);
  }
  t.equal(conn.state, 'connected.open', 'a refused argument leaves the connection as it was');
  await conn.send(message);
  await conn.send(new TextEncoder().encode(' + bytes'));
  await conn.end();
  const got = await readAll(accepted);
  t.equal(str(got), `${message} + bytes`, 'the text arrives intact, in order with the bytes after it');
  t.equal(got.length, Buffer.byteLength(message, 'utf8') + 8, 'as its UTF-8 encoding');
});

t.test("end() behind a blocked send, then the peer's end: ending → finishing → closed once our SocketEnd is out; 'end' before 'close'", async (t) => {
  const relay = await relayFor(t);
  // The transport's own steps (SocketEnd queued behind a send blocked on credit), watched frame by
  // frame: under end-to-end encryption the same steps happen beneath TLS, once its records are out.
  const a = await clientFor(t, relay, 2, { e2e: false });
  const b = await clientFor(t, relay, 3, { e2e: false });
  const server = await a.listen(7);
  const accepting = server.accept();
  const conn = await b.connect({ address: a.virtualIp, port: 7 });
  const peer = await accepting;
  const states: string[] = [];
  const events: string[] = [];
  conn.actor.subscribe(() => states.push(conn.state));
  conn.on('end', () => events.push(`end:${conn.state}`));
  conn.on('close', (error) => events.push(`close:${error?.code ?? 'clean'}`));
  const finishing = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`never reached connected.finishing (states: ${states.join(' ')})`)), 10_000);
    conn.actor.subscribe(() => {
      if (conn.state === 'connected.finishing') (clearTimeout(timer), resolve());
    });
  });
  // Twice the window: half of it waits for credit the peer grants only once it reads.
  const payload = pseudoRandom(7, 2 * 1024 * 1024);
  const sending = conn.send(payload);
  const ending = conn.end();
  t.equal(conn.state, 'connected.ending', 'end() called: SocketEnd waits behind the send');
  await t.rejects(conn.send('more'), { code: 'ERR_SOCKET_STATE' }, 'no new sends once end() is called');
  await peer.end();
  await finishing;
  t.notOk(conn.closed, 'both ends over, but not closed while our SocketEnd is still queued');
  const got = await readAll(peer);
  await sending;
  await ending;
  t.equal(sha256(got), sha256(payload), 'every byte sent before end() arrived');
  t.ok(conn.closed);
  t.same(states, ['connected.ending', 'connected.finishing', 'closed']);
  t.same(events, ['end:connected.finishing', 'close:clean'], "'end' while finishing, then a clean 'close'");
});
