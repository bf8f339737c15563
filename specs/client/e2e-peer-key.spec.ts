/**
 * A relay that lies about a peer's key (docs/SECURITY.md "What the relay cannot do"): a proxy
 * between one client and a real relay rewrites the PeerKey announcements that client gets
 * (docs/PROTOCOL.md §2a) to an impostor's key. Either way round, both ends refuse the connection
 * (the listener never gets it), and no end pins the impostor's key.
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

/** A path to the relay on which every PeerKey the client hears names `impostor` instead; counts them. */
async function lyingPath(t: Test, relayPort: number, impostor: Uint8Array): Promise<{ port: number; lies: () => number }> {
  let lies = 0;
  const port = await loopbackProxy(
    t,
    relayPort,
    (inbound, outbound) => {
      inbound.pipe(outbound);
      const decoder = new FrameDecoder(
        (type, frame) => {
          const copy = Buffer.from(frame);
          if (type === PacketType.PeerKey) {
            copy.set(impostor, PEER_KEY_OFFSET);
            lies++;
          }
          inbound.write(copy);
        },
        { maxFrameBytes: 16 * 1024 * 1024 },
      );
      outbound.on('data', (chunk: Buffer) => decoder.push(chunk));
    },
    { fromPeerAddress: true },
  );
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
