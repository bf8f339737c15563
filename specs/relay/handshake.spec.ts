import t from 'tap';
import { ConnectionStatus, PacketType, SocketStatus, FailureReason, formatIpv4, encodeArbitraryData } from '../../protocol/index.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';
import { nextId } from '../helpers/raw-client.ts';

t.test('hello gives a virtual IP; same real IP, same address', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { virtualIp: v1 } = await open('127.0.0.2');
  const { virtualIp: v2 } = await open('127.0.0.2');
  const { virtualIp: v3 } = await open('127.0.0.3');
  t.equal(v1.version, 1);
  t.equal(v1.ip, v2.ip, 'two connections of one machine share its virtual host');
  t.not(v1.ip, v3.ip);
  t.match(formatIpv4(v1.ip), /^100\./);
  t.equal(v1.maxFrameBytes, 256 * 1024);
  t.equal(relay.status().clients.length, 3);
});

t.test('status + connect handshake, data both ways, close propagation', async (t) => {
  const { relay, open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  t.equal((await b.bind(7777)).status, 0);
  const bindA = await a.bind(0);
  t.equal(bindA.status, 0);
  t.ok(bindA.port >= 49152);

  const id1 = nextId();
  // A forges C's IP as source: the relay stamps A's own.
  a.send({ type: PacketType.SocketStatusRequest, requestId: id1, source: { ip: 0x0a000001, port: bindA.port }, destination: { ip: vb.ip, port: 7777 } });
  const fwd = await b.next(PacketType.SocketStatusRequest);
  t.not(fwd.requestId, id1, 'relay substitutes its own request id');
  t.same(fwd.source, { ip: va.ip, port: bindA.port }, 'source stamped with the sender virtual IP');
  b.send({ type: PacketType.SocketStatusResponse, requestId: fwd.requestId, status: SocketStatus.Listening });
  const st = await a.next(PacketType.SocketStatusResponse);
  t.same(st, { type: PacketType.SocketStatusResponse, requestId: id1, status: SocketStatus.Listening });

  const id2 = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId: id2, connectionId: 0, source: { ip: va.ip, port: bindA.port }, destination: { ip: vb.ip, port: 7777 } });
  const creq = await b.next(PacketType.SocketConnectionRequest);
  t.ok(creq.connectionId > 0);
  b.send({ type: PacketType.SocketConnectionResponse, requestId: creq.requestId, connectionId: creq.connectionId, status: ConnectionStatus.Accepted });
  // Data right after accepting reaches A after its response.
  b.send(encodeArbitraryData(creq.connectionId, new TextEncoder().encode('hi A')));
  const cres = await a.next(PacketType.SocketConnectionResponse);
  t.same(cres, { type: PacketType.SocketConnectionResponse, requestId: id2, connectionId: creq.connectionId, status: ConnectionStatus.Accepted });
  const d1 = await a.next(PacketType.ArbitraryData);
  t.equal(new TextDecoder().decode(d1.data), 'hi A');
  a.send(encodeArbitraryData(creq.connectionId, new TextEncoder().encode('hi B')));
  const d2 = await b.next(PacketType.ArbitraryData);
  t.equal(new TextDecoder().decode(d2.data), 'hi B');
  t.equal(relay.status().pairs.length, 1);
  t.equal(relay.status().pairs[0].bytesAToB, 4);

  a.send({ type: PacketType.SocketClosed, connectionId: creq.connectionId, reason: 0 });
  const closed = await b.next(PacketType.SocketClosed);
  t.same(closed, { type: PacketType.SocketClosed, connectionId: creq.connectionId, reason: 0 });
  t.equal(relay.status().pairs.length, 0);
  t.equal(relay.status().recentCloses.at(-1)?.reason, 'Normal');
});

t.test('deny, not bound, offline, not listening', async (t) => {
  const { open } = await relayFixture(t);
  const { client: a, virtualIp: va } = await open('127.0.0.2');
  const { client: b, virtualIp: vb } = await open('127.0.0.3');
  const { port } = await a.bind(0);
  await b.bind(80);
  const src = { ip: va.ip, port };

  a.send({ type: PacketType.SocketConnectionRequest, requestId: 1, connectionId: 0, source: src, destination: { ip: vb.ip, port: 80 } });
  const creq = await b.next(PacketType.SocketConnectionRequest);
  b.send({ type: PacketType.SocketConnectionResponse, requestId: creq.requestId, connectionId: creq.connectionId, status: ConnectionStatus.Denied });
  t.same(await a.next(PacketType.SocketConnectionResponse), { type: PacketType.SocketConnectionResponse, requestId: 1, connectionId: 0, status: ConnectionStatus.Denied });

  a.send({ type: PacketType.SocketStatusRequest, requestId: 2, source: src, destination: { ip: vb.ip, port: 81 } });
  t.same(await a.next(PacketType.SocketStatusResponse), { type: PacketType.SocketStatusResponse, requestId: 2, status: SocketStatus.NotBound });

  a.send({ type: PacketType.SocketConnectionRequest, requestId: 3, connectionId: 0, source: src, destination: { ip: vb.ip, port: 81 } });
  t.same(await a.next(PacketType.SocketConnectionResponse), { type: PacketType.SocketConnectionResponse, requestId: 3, connectionId: 0, status: ConnectionStatus.NotListening });

  a.send({ type: PacketType.SocketStatusRequest, requestId: 4, source: src, destination: { ip: vb.ip + 1000, port: 80 } });
  t.same(await a.next(PacketType.RequestFailed), { type: PacketType.RequestFailed, requestId: 4, reason: FailureReason.Offline });

  a.send({ type: PacketType.SocketStatusRequest, requestId: 5, source: src, destination: { ip: vb.ip, port: 80 } });
  const sreq = await b.next(PacketType.SocketStatusRequest);
  b.send({ type: PacketType.SocketStatusResponse, requestId: sreq.requestId, status: SocketStatus.NotListening });
  t.same(await a.next(PacketType.SocketStatusResponse), { type: PacketType.SocketStatusResponse, requestId: 5, status: SocketStatus.NotListening });
});
