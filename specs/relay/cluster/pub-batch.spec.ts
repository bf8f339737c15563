/**
 * A turn's link messages as one buffer of PUB commands (actors/relay/cluster/pub-batch.ts), over a
 * real nats-server: every message arrives whole, in order, at every payload size (the length's
 * digits change at 10, 100, 1000, 10000), nats.js counts them as published, a closed connection
 * refuses as publish() does, and a link on a connection without nats.js's internals publishes
 * message by message with the same result.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { NatsLinkHub, type NatsLink } from '../../../actors/relay/cluster/nats-link.ts';
import { pubBatcher } from '../../../actors/relay/cluster/pub-batch.ts';
import { startNatsServer } from '../../helpers/nats-server.ts';

const nats = await startNatsServer(t);

async function connection(t: { teardown(fn: () => unknown): void }): Promise<NatsConnection> {
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: 0 });
  t.teardown(() => nc.close());
  return nc;
}

/** Collects `count` messages of `subject`. */
function collect(nc: NatsConnection, subject: string, count: number): Promise<Msg[]> {
  return new Promise((resolve) => {
    const got: Msg[] = [];
    nc.subscribe(subject, {
      max: count,
      callback: (_error, msg) => {
        got.push(msg);
        if (got.length === count) resolve(got);
      },
    });
  });
}

t.test('one batch of PUB commands: every message whole and in order, at every size', async (t) => {
  const [sender, receiver] = [await connection(t), await connection(t)];
  const batcher = pubBatcher(sender, 'spec.batch');
  if (batcher === undefined) throw new Error("nats.js's protocol internals are not as pub-batch.ts expects");
  const sizes = [1, 5, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 9999, 10_000, 16_389, 3];
  const payloads = sizes.map((size) => randomBytes(size));
  const arriving = collect(receiver, 'spec.batch', payloads.length);
  await receiver.flush();
  const total = payloads.reduce((sum, p) => sum + p.length, 0);
  const batch = Buffer.allocUnsafe(batcher.capacity(payloads.length, total, Math.max(...sizes)));
  let at = 0;
  for (const payload of payloads) {
    at = batcher.startMessage(batch, at, payload.length);
    payload.copy(batch, at);
    at = batcher.endMessage(batch, at + payload.length);
  }
  const before = sender.stats();
  batcher.send(batch, at, payloads.length, total, Math.max(...sizes));
  const got = await arriving;
  t.same(
    got.map((msg) => Buffer.from(msg.data).toString('hex')),
    payloads.map((p) => p.toString('hex')),
    'each payload arrived as sent, in order',
  );
  const after = sender.stats();
  t.equal(after.outMsgs - before.outMsgs, payloads.length, 'nats.js counts the messages');
  t.equal(after.outBytes - before.outBytes, total, 'and their bytes');
});

t.test('a batch that overran its buffer is refused, not sent cut short', async (t) => {
  const nc = await connection(t);
  const batcher = pubBatcher(nc, 'spec.short')!;
  t.throws(() => batcher.send(Buffer.alloc(10), 11, 1, 1, 1), RangeError);
});

t.test('a closed connection refuses a batch as publish() does', async (t) => {
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: 0 });
  const batcher = pubBatcher(nc, 'spec.closed')!;
  await nc.close();
  t.throws(() => batcher.send(Buffer.from('PUB spec.closed 1\r\nx\r\n'), 22, 1, 1, 1), /closed/);
});

t.test("a message over the server's max_payload is refused before it is queued, the connection kept", async (t) => {
  const nc = await connection(t);
  const batcher = pubBatcher(nc, 'spec.large')!;
  const max = nc.info!.max_payload;
  const command = Buffer.from(`PUB spec.large ${max + 1}\r\n`);
  t.throws(() => batcher.send(command, command.length, 1, max + 1, max + 1), /max_payload/);
  await t.resolves(nc.flush(), 'the connection is still there');
  t.equal(nc.isClosed(), false);
});

/** Binds a method read through a proxy to the real object, so nats.js's private state stays reachable. */
function bound(target: object, property: string | symbol): unknown {
  const value = Reflect.get(target, property, target) as unknown;
  return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
}

/**
 * `nc` as a link sees it with `protocol` in place of nats.js's protocol handler: undefined (no
 * internals: the link publishes message by message), or a view of the real one.
 */
function withProtocol(nc: NatsConnection, protocol: object | undefined): NatsConnection {
  return new Proxy(nc, { get: (target, property) => (property === 'protocol' ? protocol : bound(target, property)) });
}

/** `nc` with its real protocol handler seen through `replace`: a property it names reads from it instead. */
function protocolSeen(nc: NatsConnection, replace: (protocol: Record<string, unknown>, property: string | symbol) => unknown): NatsConnection {
  const protocol = (nc as unknown as { protocol: Record<string, unknown> }).protocol;
  return withProtocol(
    nc,
    new Proxy(protocol, {
      get: (target, property) => replace(target, property) ?? bound(target, property),
      set: (target, property, value) => Reflect.set(target, property, value, target),
    }),
  );
}

/** `nc` with its protocol's noMorePublishing read from `refusing()` (as while nats.js drains). */
function draining(nc: NatsConnection, refusing: () => boolean): NatsConnection {
  return protocolSeen(nc, (_protocol, property) => (property === 'noMorePublishing' ? refusing() : undefined));
}

t.test('a batch refused while the connection drains resets its link with ERR_LINK_LOST, never throws from the flush', async (t) => {
  let refusing = false;
  const a = new NatsLinkHub(draining(await connection(t), () => refusing)).open({ id: 'drain-1', end: 'a', windowBytes: 256 * 1024 });
  const b = new NatsLinkHub(await connection(t)).open({ id: 'drain-1', end: 'b', windowBytes: 256 * 1024 });
  t.teardown(() => void (a.destroy(), b.destroy()));
  await Promise.all([a.ready, b.ready]);
  b.resume();
  const failed = new Promise<Error>((resolve) => a.once('error', resolve));
  refusing = true;
  a.write(randomBytes(100_000));
  const error = (await failed) as Error & { code?: string };
  t.equal(error.code, 'ERR_LINK_LOST');
  t.match(error.message, /draining/);
});

t.test('a connection without the internals gets no batcher', async (t) => {
  t.equal(pubBatcher({} as NatsConnection, 'x'), undefined);
  t.equal(pubBatcher({ protocol: { sendCommand: 'no' } } as unknown as NatsConnection, 'x'), undefined);
});

async function transfer(t: { teardown(fn: () => unknown): void }, wrap: (nc: NatsConnection) => NatsConnection, id: string): Promise<void> {
  const a = new NatsLinkHub(wrap(await connection(t))).open({ id, end: 'a', windowBytes: 256 * 1024 });
  const b = new NatsLinkHub(await connection(t)).open({ id, end: 'b', windowBytes: 256 * 1024 });
  t.teardown(() => void (a.destroy(), b.destroy()));
  await Promise.all([a.ready, b.ready]);
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const received = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    b.on('data', (chunk: Buffer) => chunks.push(chunk));
    b.once('end', () => resolve(Buffer.concat(chunks)));
    b.once('error', reject);
  });
  await writeAll(a, data);
  const got = await received;
  if (createHash('sha256').update(got).digest('hex') !== createHash('sha256').update(data).digest('hex')) throw new Error(`${got.length} bytes arrived, not the ${data.length} sent`);
}

async function writeAll(link: NatsLink, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 50_000) if (!link.write(data.subarray(at, at + 50_000))) await once(link, 'drain');
  link.end();
}

t.test('a link publishes its data intact both as one batch a turn and message by message', async (t) => {
  // The batched link's data goes through sendCommand as PUB batches: counted through a view.
  let batches = 0;
  const counting = (nc: NatsConnection): NatsConnection =>
    protocolSeen(nc, (protocol, property) =>
      property === 'sendCommand'
        ? (command: Uint8Array | string) => {
            if (typeof command !== 'string' && Buffer.from(command.subarray(0, 4)).toString() === 'PUB ') batches++;
            (protocol.sendCommand as (command: Uint8Array | string) => void).call(protocol, command);
          }
        : undefined,
    );
  await t.resolves(transfer(t, counting, 'batch-1'), 'batched');
  t.ok(batches > 0, `the data went as ${batches} PUB batches`);
  await t.resolves(transfer(t, (nc) => withProtocol(nc, undefined), 'each-1'), 'one by one');
});
