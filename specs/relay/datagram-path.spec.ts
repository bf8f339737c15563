/**
 * The datagram path (actors/relay/datagram-path.ts) over fakes: the frame written is the very
 * frame received, stamped in place (no copy, no allocation of ours), written without a source
 * (a datagram never pauses its sender), and the congestion threshold judged at its boundary.
 */
import t from 'tap';
import { PacketType, encodePacket, readU32 } from '../../protocol/index.ts';
import { createCounters } from '../../actors/relay/counters.ts';
import { resolveRelayOptions } from '../../actors/relay/relay-options.ts';
import { DatagramPortTable } from '../../actors/relay/datagram-ports.ts';
import { DatagramPath } from '../../actors/relay/datagram-path.ts';
import { silentLogger } from '../../actors/logger.ts';
import type { Connection } from '../../actors/relay/connection.ts';
import type { RelayContext } from '../../actors/relay/context.ts';
import type { AddressStore } from '../../storage/address-store.ts';

interface FakeConnection {
  conn: Connection;
  writes: Array<[Uint8Array | readonly Uint8Array[], unknown]>;
  queued: number;
}

function fakeConnection(ip: number, hostKey: string): FakeConnection {
  const fake: FakeConnection = { conn: undefined as unknown as Connection, writes: [], queued: 0 };
  fake.conn = {
    host: { ip },
    hostKey,
    ports: new Set(),
    pairs: new Set(),
    phase: 'ready',
    out: {
      countQueue: () => fake.queued,
      write: (bytes: Uint8Array | readonly Uint8Array[], src: unknown) => void fake.writes.push([bytes, src]),
    },
  } as unknown as Connection;
  return fake;
}

function setup(queueBytes = 1000) {
  const options = resolveRelayOptions({ store: {} as AddressStore, datagramQueueBytes: queueBytes }, silentLogger);
  const counters = createCounters();
  const ctx = { options, counters, now: 0 } as unknown as RelayContext;
  const ports = new DatagramPortTable(options, counters);
  const path = new DatagramPath(ctx, ports);
  const a = fakeConnection(0x0a000002, '127.0.0.2');
  const b = fakeConnection(0x0a000003, '127.0.0.3');
  ports.bind(a.conn, 5000, 0);
  ports.bind(b.conn, 6000, 0);
  return { path, counters, a, b };
}

const frameFrom = (sourceIp: number): Uint8Array =>
  encodePacket({ type: PacketType.Datagram, source: { ip: sourceIp, port: 5000 }, destination: { ip: 0x0a000003, port: 6000 }, payload: new Uint8Array(40) });

t.test('the received frame itself is written, stamped in place, with no source to pause', async (t) => {
  const { path, counters, a, b } = setup();
  const frame = frameFrom(0x01020304);
  path.relay(a.conn, frame);
  t.equal(b.writes.length, 1);
  t.equal(b.writes[0][0], frame, 'the same object: not copied');
  t.equal(b.writes[0][1], undefined, 'written without a source: the sender is never paused for it');
  t.equal(readU32(frame, 5), 0x0a000002, "the source ip is the sender's virtual IP");
  t.equal(counters.datagramsRelayed, 1);
  t.equal(counters.datagramBytesRelayed, frame.length);
});

t.test('the congestion threshold: written below it, dropped at it', async (t) => {
  const { path, counters, a, b } = setup(1000);
  b.queued = 999;
  path.relay(a.conn, frameFrom(0x0a000002));
  t.equal(b.writes.length, 1, 'a queue one byte below the threshold takes the datagram');
  b.queued = 1000;
  path.relay(a.conn, frameFrom(0x0a000002));
  t.equal(b.writes.length, 1, 'a queue at the threshold does not');
  t.equal(counters.datagramsDropped.congested, 1);
  counters.queuedBytes = counters.queuedBytes + 1e12;
  b.queued = 0;
  path.relay(a.conn, frameFrom(0x0a000002));
  t.equal(b.writes.length, 1, 'nor does any destination while all queues are at --max-queued-bytes');
  t.equal(counters.datagramsDropped.congested, 2);
});
