/** Bulk data through the Duplex view, many clients at once, relay loss mid-transfer, reconnection. */
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import t from 'tap';
import { toDuplex } from '../../actors/client/index.ts';
import type { VirtualConnection } from '../../actors/client/index.ts';
import { clientFor, cuttableProxy, openPair, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

const MIB = 1024 * 1024;

function sink(): { writable: Writable; digest: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let total = 0;
  const writable = new Writable({
    write(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      total += chunk.length;
      cb();
    },
  });
  return { writable, digest: () => hash.digest('hex'), bytes: () => total };
}

t.test('10 MiB each way intact through the Duplex view, with half-close', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(9);
  const up = pseudoRandom(1, 10 * MIB);
  const down = pseudoRandom(2, 10 * MIB);
  const started = performance.now();
  const serverSide = (async () => {
    const conn = await server.accept();
    const duplex = toDuplex(conn);
    const got = sink();
    // Both directions at once; the server ends its side after sending all.
    await Promise.all([pipeline(duplex, got.writable), pipeline(Readable.from([down], { objectMode: false }), duplex)]);
    return got;
  })();
  const conn = await b.connect({ address: a.virtualIp, port: 9 });
  const duplex = conn.duplex();
  const got = sink();
  await Promise.all([pipeline(Readable.from([up]), duplex), pipeline(duplex, got.writable)]);
  const serverGot = await serverSide;
  const seconds = (performance.now() - started) / 1000;
  t.equal(serverGot.bytes(), up.length);
  t.equal(serverGot.digest(), sha256(up));
  t.equal(got.bytes(), down.length);
  t.equal(got.digest(), sha256(down));
  t.comment(`20 MiB through the relay in ${seconds.toFixed(2)} s (${(20 / seconds).toFixed(1)} MiB/s)`);
});

t.test('a reader that stops reading holds the sender back (window, no unbounded buffering)', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const [conn, accepted] = await openPair(a, b, 9);
  // Send 3 MiB without reading on the other side: send() must not resolve past the window.
  const sent = conn.send(pseudoRandom(3, 3 * MIB));
  let resolved = false;
  void sent.then(() => (resolved = true));
  // Reading the first 1 MiB (the whole window) is possible; then credit flows and it finishes.
  let received = 0;
  let sawPending = false;
  for await (const chunk of accepted) {
    if (received === 0) sawPending = !resolved;
    received += chunk.length;
    if (received === 3 * MIB) break;
  }
  await sent;
  t.ok(sawPending, 'send() was still waiting for window credit when reading began');
  t.equal(received, 3 * MIB);
});

t.test('three clients talking at once', async (t) => {
  const relay = await relayFor(t);
  const clients = await Promise.all([2, 3, 4].map((n) => clientFor(t, relay, n)));
  const servers = await Promise.all(clients.map((c) => c.listen(7)));
  // Each server echoes every connection it gets.
  for (const server of servers) {
    void (async () => {
      for await (const conn of server) {
        void (async () => {
          const data = await readAll(conn);
          await conn.send(data);
          await conn.end();
        })();
      }
    })();
  }
  const talks: Array<Promise<void>> = [];
  for (const from of clients) {
    for (const to of clients) {
      if (from === to) continue;
      talks.push(
        (async () => {
          const conn = await from.connect({ address: to.virtualIp, port: 7 });
          const msg = pseudoRandom(from.virtualIp.length + to.virtualIp.charCodeAt(7), 200_000);
          await conn.send(msg);
          await conn.end();
          t.equal(sha256(await readAll(conn)), sha256(msg), `${from.virtualIp} → ${to.virtualIp}`);
        })(),
      );
    }
  }
  await Promise.all(talks);
});

t.test('relay killed mid-transfer: both ends get a clear error', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const [conn, accepted] = await openPair(a, b, 9);
  const errors: Array<Promise<unknown>> = [conn, accepted].map(
    (c: VirtualConnection) => new Promise((resolve) => c.on('close', resolve)),
  );
  const sending = (async () => {
    for (;;) await conn.send(pseudoRandom(4, 256 * 1024));
  })();
  let got = 0;
  const reading = (async () => {
    for await (const chunk of accepted) {
      got += chunk.length;
      if (got > 2 * MIB) void relay.close();
    }
  })();
  await Promise.all([
    t.rejects(sending, { code: /ERR_CLOSED_BY_RELAY|ERR_RELAY_LOST/ }),
    t.rejects(reading, { code: /ERR_CLOSED_BY_RELAY|ERR_RELAY_LOST/ }),
  ]);
  const [e1, e2] = await Promise.all(errors);
  t.match(e1, { message: /relay/ });
  t.match(e2, { message: /relay/ });
});

t.test('reconnection keeps the virtual IP and listeners listen again', async (t) => {
  const relay = await relayFor(t);
  const proxy = await cuttableProxy(t, relay);
  const a = await clientFor(t, proxy, 2, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
  const b = await clientFor(t, relay, 3);
  const server = await a.listen(7);
  const ip = a.virtualIp;
  const states: string[] = [];
  a.actor.subscribe((s) => states.push(typeof s.value === 'string' ? s.value : Object.keys(s.value)[0]));
  const serverStates: string[] = [];
  const back = new Promise<void>((resolve) => {
    const sub = server.actor.subscribe((s) => {
      serverStates.push(String(s.value));
      if (s.value === 'listening') {
        sub.unsubscribe();
        resolve();
      }
    });
  });
  proxy.cut();
  await back;
  t.equal(a.virtualIp, ip);
  t.equal(a.state, 'connected');
  t.ok(states.includes('reconnecting'), 'went through reconnecting');
  t.same(serverStates, ['relistening', 'listening']);
  const conn = await b.connect({ address: ip, port: 7 });
  const accepted = await server.accept();
  await conn.send(new Uint8Array([42]));
  await conn.end();
  t.same([...(await readAll(accepted))], [42]);
});

t.test('20 connections of one client send at once: bytes intact, buffers reusable after send(), no listener leak', async (t) => {
  const relay = await relayFor(t);
  const a = await clientFor(t, relay, 2);
  const b = await clientFor(t, relay, 3);
  const warnings: Error[] = [];
  const onWarning = (warning: Error): number => warnings.push(warning);
  process.on('warning', onWarning);
  t.teardown(() => void process.off('warning', onWarning));
  const server = await a.listen(9);
  const COUNT = 20;
  const CHUNKS = 8;
  const CHUNK = 256 * 1024;
  const received = (async () => {
    const digests: string[] = [];
    const conns = [];
    for (let i = 0; i < COUNT; i++) conns.push(await server.accept());
    await Promise.all(conns.map(async (conn) => digests.push(sha256(await readAll(conn)))));
    return digests.sort();
  })();
  const expected: string[] = [];
  await Promise.all(
    Array.from({ length: COUNT }, async (_, i) => {
      const conn = await b.connect({ address: a.virtualIp, port: 9 });
      const whole = pseudoRandom(100 + i, CHUNKS * CHUNK);
      expected.push(sha256(whole));
      // One scratch buffer, refilled with the next chunk as soon as send() resolves: a send that
      // still referenced it would deliver the wrong bytes.
      const scratch = new Uint8Array(CHUNK);
      for (let c = 0; c < CHUNKS; c++) {
        scratch.set(whole.subarray(c * CHUNK, (c + 1) * CHUNK));
        await conn.send(scratch);
      }
      scratch.fill(0);
      await conn.end();
    }),
  );
  t.same(await received, expected.sort(), 'every connection delivered its bytes intact');
  t.same(warnings.map((w) => w.name), [], 'no warning (MaxListenersExceededWarning) from the shared relay connection');
});

t.test('a relay that allows large frames: a 1 MiB send reaches a peer whole (the client accepts the frames its relay forwards)', async (t) => {
  const relay = await relayFor(t, { maxFrameBytes: 2 * 1024 * 1024 });
  const receiver = await clientFor(t, relay, 31, { identity: false });
  const sender = await clientFor(t, relay, 32, { identity: false });
  const [a, b] = await openPair(receiver, sender, 4400);
  const payload = pseudoRandom(41, 1024 * 1024);
  const got = readAll(b, 30_000);
  await a.send(payload);
  await a.end();
  t.equal(sha256(await got), sha256(payload), 'every byte, in order');
  t.equal(receiver.state, 'connected', 'the receiving session is still up');
});
