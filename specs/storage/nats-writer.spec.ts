/**
 * Pipelined KV writes (storage/nats-writer.ts) over a real nats-server: a write resolves only once
 * JetStream acknowledged it, a create on a key ever written is refused as the library refuses it
 * (so isKeyTaken keeps the address map's guarantee), a delete leaves a marker, and a write nobody
 * acknowledges fails within its timeout instead of waiting for ever.
 */
import t from 'tap';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { KvWriter } from '../../storage/index.ts';
import { isKeyTaken } from '../../storage/nats-kv-store.ts';
import { startNatsServer } from '../helpers/nats-server.ts';

const nats = await startNatsServer(t);
const nc = await connect({ servers: nats.url });
t.teardown(() => nc.close());
const kv = await new Kvm(jetstream(nc)).create('writer', { history: 1 });

t.test('writes made together are all acknowledged, with their sequences, and land', async (t) => {
  const writer = new KvWriter(nc);
  t.teardown(() => writer.close());
  const sequences = await Promise.all(Array.from({ length: 200 }, (_, i) => writer.write('writer', `k.${i}`, `v${i}`)));
  t.equal(new Set(sequences).size, 200, 'each write has its own stream sequence');
  t.equal((await kv.get('k.7'))?.string(), 'v7');
  t.equal((await kv.get('k.199'))?.string(), 'v199');
  t.equal(writer.pending, 0, 'nothing left waiting');
});

t.test('a create is refused on a key ever written, deleted or not, as isKeyTaken knows it', async (t) => {
  const writer = new KvWriter(nc);
  t.teardown(() => writer.close());
  await writer.write('writer', 'once', 'first', 'create');
  const again = await writer.write('writer', 'once', 'second', 'create').then(
    () => undefined,
    (error: unknown) => error,
  );
  t.ok(isKeyTaken(again), `a second create is refused as taken (got ${String(again)})`);
  t.equal((await kv.get('once'))?.string(), 'first', 'the first value stays');

  await writer.write('writer', 'gone', 'x');
  await writer.write('writer', 'gone', '', 'delete');
  t.equal((await kv.get('gone'))?.operation, 'DEL', 'a delete leaves a delete marker');
  const afterDelete = await writer.write('writer', 'gone', 'y', 'create').then(
    () => undefined,
    (error: unknown) => error,
  );
  t.ok(isKeyTaken(afterDelete), 'a create on a deleted key is refused too (never reuse a deleted key: nats-server #4320)');
});

t.test('a write to a bucket that does not exist fails at once, saying why', async (t) => {
  const writer = new KvWriter(nc);
  t.teardown(() => writer.close());
  await t.rejects(writer.write('no-such-bucket', 'k', 'v'), { message: /no responders/ });
});

t.test('a write nobody acknowledges fails within the timeout', async (t) => {
  // A subscriber that never answers: the server has a responder, so no 503 comes back either.
  const silent = nc.subscribe('$KV.silent.>');
  t.teardown(() => silent.unsubscribe());
  await nc.flush();
  const writer = new KvWriter(nc, 200);
  t.teardown(() => writer.close());
  const started = performance.now();
  await t.rejects(writer.write('silent', 'k', 'v'), { message: /not acknowledged within 200 ms/ });
  t.ok(performance.now() - started < 5_000, 'it did not wait for the default timeout');
});

t.test('closing fails what still waits', async (t) => {
  const silent = nc.subscribe('$KV.closing.>');
  t.teardown(() => silent.unsubscribe());
  await nc.flush();
  const writer = new KvWriter(nc);
  const write = writer.write('closing', 'k', 'v');
  await new Promise((resolve) => setImmediate(resolve));
  writer.close();
  await t.rejects(write, { message: /closed/ });
});
