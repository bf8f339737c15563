/**
 * Issue 9, finding 4: once a host's ephemeral range was full, every BindRequest(port 0) scanned
 * all 16,384 ports (~0.2 ms each), so a flood stalled the event loop. The allocator now finds a
 * port, or finds there is none, in bounded work (specs/relay/port-allocator.spec.ts). Here, over
 * TCP: a full range answers a flood of Bind(0) with NoFreePort, each one, while a bystander pair
 * keeps exchanging data, and a released port is found again.
 */
import t from 'tap';
import { BindStatus, PacketType } from '../../protocol/index.ts';
import { nextId } from '../helpers/raw-client.ts';
import { relayFixture } from '../helpers/relay-fixture.ts';
import { Bystander } from '../helpers/bystander.ts';

const RANGE = 65536 - 49152;

t.test('a full ephemeral range answers a Bind(0) flood with NoFreePort; bystanders keep working', async (t) => {
  const { relay, open } = await relayFixture(t, { maxSocketsPerClient: 100_000 });
  const bystander = await Bystander.start(relay.port, '127.0.9.1', '127.0.9.2');
  const { client } = await open('127.0.8.1');
  for (let i = 0; i < RANGE; i++) client.send({ type: PacketType.BindRequest, requestId: nextId(), port: 0 });
  const ports = new Set<number>();
  for (let i = 0; i < RANGE; i++) {
    const answer = await client.next(PacketType.BindResponse, 20_000);
    if (answer.status !== BindStatus.Ok) {
      t.fail(`bind ${i} answered ${answer.status}`);
      break;
    }
    ports.add(answer.port);
  }
  t.equal(ports.size, RANGE, 'every ephemeral port handed out once');

  const FLOOD = 20_000;
  for (let i = 0; i < FLOOD; i++) client.send({ type: PacketType.BindRequest, requestId: nextId(), port: 0 });
  const during = bystander.advance(3);
  let noFreePort = 0;
  for (let i = 0; i < FLOOD; i++) {
    const answer = await client.next(PacketType.BindResponse, 20_000);
    if (answer.status === BindStatus.NoFreePort && answer.port === 0) noFreePort++;
  }
  t.equal(noFreePort, FLOOD, 'every Bind(0) into a full range is answered NoFreePort');
  await during;

  client.send({ type: PacketType.Unbind, port: 60_000 });
  const again = await client.bind(0);
  t.same([again.status, again.port], [BindStatus.Ok, 60_000], 'the one free port is found');
  await bystander.advance(3);
  await bystander.stop();
});
