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
