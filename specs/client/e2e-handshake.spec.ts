/**
 * How the end-to-end handshake fails (docs/SECURITY.md "End-to-end encryption"). A relay that
 * lies about a peer's key: a proxy between one client and a real relay rewrites the PeerKey
 * announcements that client gets (docs/PROTOCOL.md §2a) to an impostor's key. Either way round,
 * both ends refuse the connection (the listener never gets it), and no end pins the impostor's
 * key. A path that drops the handshake's reply fails connect() at the handshake timeout.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { VirtualConnection } from '../../actors/client/connection.ts';
import { handshake } from '../../actors/client/e2e/handshake.ts';
import { RECORD_HEAD_BYTES, RecordType, TAG_BYTES, writeRecordHead } from '../../actors/client/e2e/records.ts';
import { generateIdentity } from '../../actors/client/identity.ts';
import { FrameDecoder, PacketType } from '../../protocol/index.ts';
import { loopbackProxy } from '../helpers/loopback-proxy.ts';
import { waitFor, within } from '../helpers/wait.ts';
import { clientFor, relayFor } from './fixtures.ts';

/** Where a PeerKey frame's key starts: 5-byte frame head, 4-byte connection id. */
const PEER_KEY_OFFSET = 9;

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-e2e-key-'));
  t.teardown(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }));
  return dir;
}

/**
 * A path to the relay that passes the relay's frames to the client through `rewrite` (which
 * returns the frame to pass on, changed or not, or undefined to drop it).
 */
async function rewritingPath(t: Test, relayPort: number, rewrite: (type: number, frame: Buffer) => Buffer | undefined): Promise<number> {
  return loopbackProxy(
    t,
    relayPort,
    (inbound, outbound) => {
      inbound.pipe(outbound);
      const decoder = new FrameDecoder(
        (type, frame) => {
          const passed = rewrite(type, Buffer.from(frame));
          if (passed !== undefined) inbound.write(passed);
        },
        { maxFrameBytes: 16 * 1024 * 1024 },
      );
      outbound.on('data', (chunk: Buffer) => decoder.push(chunk));
    },
    { fromPeerAddress: true },
  );
}

/** A path to the relay on which every PeerKey the client hears names `impostor` instead; counts them. */
async function lyingPath(t: Test, relayPort: number, impostor: Uint8Array): Promise<{ port: number; lies: () => number }> {
  let lies = 0;
  const port = await rewritingPath(t, relayPort, (type, frame) => {
    if (type === PacketType.PeerKey) {
      frame.set(impostor, PEER_KEY_OFFSET);
      lies++;
    }
    return frame;
  });
  return { port, lies: () => lies };
}

/** A logger that keeps what the client warns, with the error it logged. */
function warnings(): { logger: never; errors: Array<{ code?: string; message?: string }> } {
  const errors: Array<{ code?: string; message?: string }> = [];
  const logger = {
    warn: (first: unknown) => {
      const err = (first as { err?: { code?: string; message?: string } })?.err;
      if (err !== undefined) errors.push(err);
    },
    info() {},
    debug() {},
    error() {},
    child: () => logger,
  };
  return { logger: logger as never, errors };
}

t.test("a relay that announces an impostor's key to the connector: both ends refuse, and the connector pins nothing", async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const acceptorLog = warnings();
  const acceptor = await clientFor(t, relay, 2, { identity: path.join(dir, 'acceptor', 'identity'), logger: acceptorLog.logger });
  const path_ = await lyingPath(t, relay.port, generateIdentity().publicKey);
  const connector = await clientFor(t, { host: '127.0.0.1', port: path_.port }, 3, { identity: path.join(dir, 'connector', 'identity') });
  const listener = await acceptor.listen(7);
  let delivered = false;
  void listener.accept().then(
    () => (delivered = true),
    () => {},
  );
  // The connector encrypts its first message to the impostor's key: the true acceptor cannot
  // read it, refuses, and aborts; the connector is told its handshake was refused.
  await t.rejects(within('connect()', connector.connect({ address: acceptor.virtualIp, port: 7 })), { code: 'ERR_E2E_HANDSHAKE', message: /refuses this end's key, or was asked for a key it does not hold/ });
  t.ok(path_.lies() >= 1, 'the relay lied');
  await waitFor(() => acceptorLog.errors.length > 0, 'the acceptor to refuse');
  t.match(acceptorLog.errors[0], { code: 'ERR_E2E_PEER_KEY', message: /not made for this end's key/ }, 'the acceptor: the handshake was not made for its key');
  t.notOk(delivered, 'the listener never got a connection');
  await t.rejects(readFile(path.join(dir, 'connector', 'known-peers'), 'utf8'), { code: 'ENOENT' }, "the impostor's key is not pinned");
});

t.test("a relay that announces an impostor's key to the acceptor: both ends refuse, and the acceptor pins nothing", async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const acceptorLog = warnings();
  const path_ = await lyingPath(t, relay.port, generateIdentity().publicKey);
  const acceptor = await clientFor(t, { host: '127.0.0.1', port: path_.port }, 2, { identity: path.join(dir, 'acceptor', 'identity'), logger: acceptorLog.logger });
  const connector = await clientFor(t, relay, 3, { identity: path.join(dir, 'connector', 'identity') });
  const listener = await acceptor.listen(7);
  let delivered = false;
  void listener.accept().then(
    () => (delivered = true),
    () => {},
  );
  // The connector's first message proves its true key; the acceptor expected the impostor's.
  await t.rejects(within('connect()', connector.connect({ address: acceptor.virtualIp, port: 7 })), { code: 'ERR_E2E_HANDSHAKE' });
  await waitFor(() => acceptorLog.errors.length > 0, 'the acceptor to refuse');
  t.match(acceptorLog.errors[0], { code: 'ERR_E2E_PEER_KEY', message: /proved another key in the handshake .* than the relay announced/ }, 'the acceptor: another key than announced');
  t.notOk(delivered, 'the listener never got a connection');
  await t.rejects(readFile(path.join(dir, 'acceptor', 'known-peers'), 'utf8'), { code: 'ENOENT' }, "the impostor's key is not pinned");
});

t.test('a path that drops the handshake reply fails connect() with ERR_E2E_HANDSHAKE at requestTimeoutMs, never hangs', async (t) => {
  const relay = await relayFor(t);
  const dir = await tempDir(t);
  const acceptor = await clientFor(t, relay, 2, { identity: path.join(dir, 'acceptor', 'identity') });
  // Every data frame to the connector is dropped: the acceptor's preamble and reply never arrive.
  let dropped = 0;
  const port = await rewritingPath(t, relay.port, (type, frame) => {
    if (type !== PacketType.ArbitraryData) return frame;
    dropped++;
    return undefined;
  });
  const connector = await clientFor(t, { host: '127.0.0.1', port }, 3, { identity: path.join(dir, 'connector', 'identity'), requestTimeoutMs: 1_000 });
  await acceptor.listen(7);
  const started = Date.now();
  await t.rejects(within('connect()', connector.connect({ address: acceptor.virtualIp, port: 7 })), {
    code: 'ERR_E2E_HANDSHAKE',
    message: /no end-to-end handshake with .* within 1000 ms/,
  });
  t.ok(Date.now() - started >= 900, 'not before the timeout');
  t.ok(dropped >= 1, 'the reply was dropped on the way');
});

/** A stand-in raw connection between two virtual endpoints: what it sends lands in `out`, `feed` is what it reads. */
function fakeRaw(local: string, localPort: number, remote: string, remotePort: number, peerKey: Uint8Array) {
  const queue: Uint8Array[] = [];
  let waiter: ((chunk: Uint8Array | null) => void) | undefined;
  const out: Uint8Array[] = [];
  const raw = {
    localAddress: local,
    localPort,
    remoteAddress: remote,
    remotePort,
    peerKey,
    send: async (bytes: Uint8Array) => {
      out.push(Buffer.from(bytes));
    },
    takeChunk: () => queue.shift(),
    read: () => new Promise<Uint8Array | null>((resolve) => (queue.length > 0 ? resolve(queue.shift()!) : (waiter = resolve))),
    closeWithReason() {},
    destroy() {},
  };
  return {
    out,
    raw: raw as unknown as VirtualConnection,
    feed(chunk: Uint8Array): void {
      const w = waiter;
      waiter = undefined;
      if (w) w(chunk);
      else queue.push(chunk);
    },
  };
}

t.test("a connector's first flight replayed onto a new connection with the same endpoints: the acceptor never completes (key confirmation)", async (t) => {
  const a = generateIdentity();
  const b = generateIdentity();
  const options = (identity: typeof a, role: 'connector' | 'acceptor', timeoutMs: number) => ({ identity, role, pins: undefined, timeoutMs, clock: undefined, warn() {} });
  // A genuine connection 100.64.0.2:40000 -> 100.64.0.3:7, its first flight recorded on the way.
  const connector = fakeRaw('100.64.0.2', 40000, '100.64.0.3', 7, b.publicKey);
  const acceptor = fakeRaw('100.64.0.3', 7, '100.64.0.2', 40000, a.publicKey);
  const connecting = handshake(connector.raw, options(a, 'connector', 5000));
  const accepting = handshake(acceptor.raw, options(b, 'acceptor', 5000));
  await waitFor(() => connector.out.length === 1, "the connector's first flight");
  const recorded = Buffer.from(connector.out[0]);
  acceptor.feed(Buffer.from(recorded));
  await waitFor(() => acceptor.out.length === 2, "the acceptor's preamble and reply");
  for (const chunk of acceptor.out) connector.feed(chunk);
  await within('the connector completing', connecting);
  t.equal(connector.out.length, 2, 'the connector sends one more record after the reply: its key confirmation');
  acceptor.feed(connector.out[1]);
  await within('the acceptor completing once the confirmation opened', accepting);
  t.pass('the genuine connection completes at both ends');

  // Later the relay fakes a connection request from the same endpoints and replays the first flight.
  const replayed = fakeRaw('100.64.0.3', 7, '100.64.0.2', 40000, a.publicKey);
  const replaying = handshake(replayed.raw, options(b, 'acceptor', 500));
  replayed.feed(Buffer.from(recorded));
  await t.rejects(within('the replayed handshake failing', replaying), { code: 'ERR_E2E_HANDSHAKE' }, 'without a confirmation the acceptor never completes');

  // Nor does a confirmation the relay forges (it holds no key to seal one).
  const forged = fakeRaw('100.64.0.3', 7, '100.64.0.2', 40000, a.publicKey);
  const forging = handshake(forged.raw, options(b, 'acceptor', 5000));
  forged.feed(Buffer.from(recorded));
  await waitFor(() => forged.out.length === 2, 'the reply to the replay');
  const fake = Buffer.alloc(RECORD_HEAD_BYTES + TAG_BYTES);
  writeRecordHead(fake, 0, RecordType.Confirm, TAG_BYTES);
  forged.feed(fake);
  await t.rejects(within('the forged confirmation failing', forging), { code: 'ERR_E2E_HANDSHAKE', message: /key confirmation does not open/ });
});
