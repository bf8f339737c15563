/**
 * A stand-in's identity (actors/relay/cluster/ghost.ts, Relay.admitStream): admitted with the key
 * the remote client proved to its own relay, it is not challenged, its key is announced to its
 * peers and in key mode decides its address; the key the relay announces back is kept for the
 * router. A network connection never gets that path: it is always challenged.
 */
import t, { type Test } from 'tap';
import { ConnectionStatus, ErrorCode, IDENTITY_PROTOCOL_VERSION, PacketType, parseIpv4 } from '../../../protocol/index.ts';
import { generateIdentity, signChallenge, type Identity } from '../../../actors/client/identity.ts';
import { startRelay, type Relay } from '../../../actors/relay/index.ts';
import { Ghost } from '../../../actors/relay/cluster/ghost.ts';
import { openMemoryAddressStore, type IdentityMode } from '../../../storage/index.ts';
import { RawClient, nextId } from '../../helpers/raw-client.ts';

async function relayIn(t: Test, identityMode: IdentityMode): Promise<Relay> {
  const store = await openMemoryAddressStore({ identityMode });
  const relay = await startRelay({ store, host: '127.0.0.1', port: 0, identityMode });
  t.teardown(async () => {
    await relay.close();
    await store.close();
  });
  return relay;
}

/** A raw client that proves `identity` at Hello; its virtual IP. */
async function provingClient(t: Test, relay: Relay, localAddress: string, identity: Identity): Promise<{ raw: RawClient; ip: number }> {
  const raw = await RawClient.connect({ port: relay.port, localAddress });
  t.teardown(() => raw.close());
  const virtualIp = await raw.helloWithProof((challenge) => ({ publicKey: identity.publicKey, signature: signChallenge(identity, challenge) }));
  t.equal(virtualIp.version, IDENTITY_PROTOCOL_VERSION);
  return { raw, ip: virtualIp.ip };
}

function ghostIp(relay: Relay, ghost: Ghost): number {
  const entry = relay.status({ limit: Infinity }).clients.find((c) => c.id === ghost.clientId);
  const ip = entry?.virtualIp == null ? undefined : parseIpv4(entry.virtualIp);
  if (ip === undefined) throw new Error(`stand-in ${ghost.clientId} has no virtual IP in status()`);
  return ip;
}

/** The stand-in asks host:7 from its port 5000; the host sees PeerKey (if any) and accepts. */
async function connectFromGhost(t: Test, ghost: Ghost, from: number, host: RawClient, hostIp: number) {
  t.ok(await ghost.hold(5000), 'the stand-in holds its source port');
  const requestId = ghost.newRequestId();
  const answer = ghost.answer(requestId);
  ghost.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: from, port: 5000 }, destination: { ip: hostIp, port: 7 } });
  const request = await host.next(PacketType.SocketConnectionRequest);
  const peerKey = host.queue.find((p) => p.type === PacketType.PeerKey && p.connectionId === request.connectionId);
  host.send({ type: PacketType.SocketConnectionResponse, requestId: request.requestId, connectionId: request.connectionId, status: ConnectionStatus.Accepted });
  const response = await answer;
  if (response.type !== PacketType.SocketConnectionResponse) throw new Error(`the stand-in got ${response.type}, not SocketConnectionResponse`);
  return { request, response, peerKeyAtHost: peerKey?.type === PacketType.PeerKey ? peerKey.publicKey : undefined };
}

t.test('key mode: a stand-in with a vouched key is not challenged, gets the key’s address and is announced with it', async (t) => {
  const relay = await relayIn(t, 'key');
  const remote = generateIdentity();
  const hostIdentity = generateIdentity();
  const { raw: host, ip: hostIp } = await provingClient(t, relay, '127.7.0.2', hostIdentity);
  t.equal((await host.bind(7)).status, 0);
  // The remote client, once, as a real client of this relay: its key's address.
  const { raw: once, ip: keyIp } = await provingClient(t, relay, '127.7.0.3', remote);
  await once.close();
  const ghost = await Ghost.open(relay, '10.20.30.40', undefined, remote.publicKey);
  t.teardown(() => ghost.close());
  t.equal(ghostIp(relay, ghost), keyIp, 'the stand-in has the address of the key it speaks for, whatever its real IP');
  const { response, peerKeyAtHost } = await connectFromGhost(t, ghost, keyIp, host, hostIp);
  t.equal(response.status, ConnectionStatus.Accepted);
  t.same(peerKeyAtHost, remote.publicKey, "the host is told the remote client's key");
  t.same(ghost.takePeerKey(response.connectionId), hostIdentity.publicKey, "the stand-in kept the host's key for the router");
  t.equal(ghost.takePeerKey(response.connectionId), undefined, 'taken once');
});

t.test('key mode: a stand-in without a key is refused (IdentityRequired), like a client that proves none', async (t) => {
  const relay = await relayIn(t, 'key');
  await t.rejects(Ghost.open(relay, '10.20.30.41'), /refused the stand-in/);
});

t.test('ip mode: a stand-in without a key announces none; with one, its key', async (t) => {
  const relay = await relayIn(t, 'ip');
  const hostIdentity = generateIdentity();
  const { raw: host, ip: hostIp } = await provingClient(t, relay, '127.7.0.4', hostIdentity);
  t.equal((await host.bind(7)).status, 0);
  const keyless = await Ghost.open(relay, '10.20.30.42');
  t.teardown(() => keyless.close());
  const first = await connectFromGhost(t, keyless, ghostIp(relay, keyless), host, hostIp);
  t.equal(first.peerKeyAtHost, undefined, 'no PeerKey for a requester that proved no key');
  t.equal(keyless.takePeerKey(first.response.connectionId), undefined, 'and a keyless stand-in hears none');
  const remote = generateIdentity();
  const keyed = await Ghost.open(relay, '10.20.30.43', undefined, remote.publicKey);
  t.teardown(() => keyed.close());
  const second = await connectFromGhost(t, keyed, ghostIp(relay, keyed), host, hostIp);
  t.same(second.peerKeyAtHost, remote.publicKey);
  t.same(keyed.takePeerKey(second.response.connectionId), hostIdentity.publicKey);
  t.same(relay.identityAt({ ip: hostIp, port: 7 }), { realIp: '127.7.0.4', publicKey: hostIdentity.publicKey }, 'identityAt names who holds the port');
});

t.test('a network client never skips the proof: Hello version 2 is always challenged, and a PeerKey of its own is refused', async (t) => {
  const relay = await relayIn(t, 'key');
  const raw = await RawClient.connect({ port: relay.port, localAddress: '127.7.0.5' });
  t.teardown(() => raw.close());
  raw.send({ type: PacketType.Hello, version: IDENTITY_PROTOCOL_VERSION });
  t.ok(await raw.next(PacketType.Challenge), 'challenged');
  raw.send({ type: PacketType.PeerKey, connectionId: 0, publicKey: generateIdentity().publicKey });
  t.match(await raw.next(PacketType.Error), { code: ErrorCode.UnexpectedPacket });
  t.notOk(raw.queue.some((p) => p.type === PacketType.VirtualIp), 'no address');
});
