/**
 * Cluster figures (issue 13, docs/CLUSTER.md): a nats-server with JetStream and three relay
 * processes started with --cluster, as users run them; new clients say Hello spread over the
 * three (the address map in JetStream KV: a create per new real IP, a block claim per 64), then
 * the same clients again (a cache hit, no write), in one run.
 *
 * Then, in the same run, one flow between two clients on one relay and one between clients on two
 * relays (through NATS): bulk throughput, and the round trip of a 1 KiB message echoed back.
 *
 *   node --import tsx bench/cluster-bench.ts [new clients=5000] [at once=500] [bulk MiB=64] [round trips=2000]
 *
 * Targets (issue 13): new-client assignment with the map in KV ≥ 2,000/s; cross-relay throughput
 * ≥ 0.5× same-relay; cross-relay round trip ≤ 2 ms more than same-relay at the median.
 */
import { connect } from '@nats-io/transport-node';
import { NatsAddressStore } from '../storage/index.ts';
import { startNatsServer } from '../specs/helpers/nats-server.ts';
import { AddressBlock, sourceAddress } from './lib/addresses.ts';
import { forEachLimited } from './lib/parallel.ts';
import { bulkTransfer, withDeadline } from './load/drive.ts';
import type { VirtualConnection } from './load/raw-client.ts';
import { LISTEN_PORT, RelayProcess, VirtualEnd, type Pair } from './load/transports.ts';

const clients = Number(process.argv[2] ?? 5000);
const atOnce = Number(process.argv[3] ?? 500);
const bulkBytes = Number(process.argv[4] ?? 64) * 1024 * 1024;
const roundTrips = Number(process.argv[5] ?? 2000);
const MESSAGE_BYTES = 1024;
/** Bytes per write in the bulk test. */
const WRITE_BYTES = 64 * 1024;
/** New clients per second with the map in KV (issue 13). */
const TARGET_PER_SECOND = 2000;
const DEADLINE_MS = 120_000;

async function hellos(relays: RelayProcess[]): Promise<number> {
  const seen = new Map<string, number>();
  const started = performance.now();
  await withDeadline(
    forEachLimited(clients, atOnce, async (i) => {
      const source = sourceAddress(AddressBlock.address, i);
      const client = await relays[i % relays.length].connect(source);
      seen.set(source, client.virtualIp);
      client.close();
    }),
    DEADLINE_MS,
    `${clients} clients saying Hello`,
  );
  const seconds = (performance.now() - started) / 1000;
  if (new Set(seen.values()).size !== clients) throw new Error(`${clients} clients got ${new Set(seen.values()).size} distinct virtual IPs`);
  return clients / seconds;
}

/** The map alone: three stores (three connections) in this process, `atOnce` calls in flight. */
async function storeAlone(url: string): Promise<number> {
  const connections = await Promise.all([1, 2, 3].map(() => connect({ servers: url })));
  try {
    const stores = await Promise.all(connections.map((connection, i) => NatsAddressStore.open({ connection, relayId: `s${i}`, bucket: 'bench-alone' })));
    const started = performance.now();
    await forEachLimited(clients, atOnce, (i) => stores[i % 3].findOrAllocate(`12.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`).then(() => {}));
    const perSecond = clients / ((performance.now() - started) / 1000);
    await Promise.all(stores.map((s) => s.close()));
    return perSecond;
  } finally {
    await Promise.all(connections.map((c) => c.close()));
  }
}

/** One flow from a client of `from` to a listener on `to` (retrying while the cluster learns of the listener). */
async function flow(from: RelayProcess, to: RelayProcess, n: number): Promise<Pair> {
  const listener = await to.connect(sourceAddress(AddressBlock.flows, 2 * n + 1));
  const connector = await from.connect(sourceAddress(AddressBlock.flows, 2 * n));
  await listener.listen(LISTEN_PORT);
  const deadline = performance.now() + 20_000;
  for (;;) {
    const sourcePort = await connector.bind(0);
    const accepted = new Promise<VirtualConnection>((resolve) => listener.once('connection', resolve));
    try {
      const a = await connector.open(sourcePort, { ip: listener.virtualIp, port: LISTEN_PORT });
      return { a: new VirtualEnd(a, connector), b: new VirtualEnd(await accepted, listener) };
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** 1 KiB from a, echoed by b, `roundTrips` times one after another: the median and p99 in ms. */
async function roundTrip(pair: Pair): Promise<{ p50: number; p99: number }> {
  pair.b.setOnData((chunk) => pair.b.write(chunk));
  const message = Buffer.alloc(MESSAGE_BYTES, 7);
  const samples: number[] = [];
  for (let i = 0; i < roundTrips; i++) {
    const started = performance.now();
    await withDeadline(
      new Promise<void>((resolve) => {
        let got = 0;
        pair.a.setOnData((chunk) => {
          got += chunk.length;
          if (got >= MESSAGE_BYTES) resolve();
        });
        pair.a.write(message);
      }),
      10_000,
      'a 1 KiB echo',
    );
    samples.push(performance.now() - started);
  }
  samples.sort((x, y) => x - y);
  return { p50: samples[Math.floor(samples.length / 2)], p99: samples[Math.floor(samples.length * 0.99)] };
}

async function bulk(pair: Pair): Promise<number> {
  const pattern = Buffer.alloc(WRITE_BYTES);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31) & 255;
  const result = await bulkTransfer([pair], pattern, bulkBytes, WRITE_BYTES, 120_000);
  return result.bytes / result.seconds / 1e6;
}

const nats = await startNatsServer();
const relays: RelayProcess[] = [];
try {
  for (const id of ['b1', 'b2', 'b3']) relays.push(await RelayProcess.start({ extraArgs: ['--cluster', nats.url, '--relay-id', id] }));
  const fresh = await hellos(relays);
  const known = await hellos(relays);
  // The same load on one relay with its lowdb store (fsynced, as shipped), in the same run: the
  // machine is shared, so only figures taken side by side compare.
  const single = await RelayProcess.start();
  let lowdb: number;
  try {
    lowdb = await hellos([single]);
  } finally {
    await single.stop();
  }
  const alone = await storeAlone(nats.url);
  const same = await flow(relays[0], relays[0], 0);
  const across = await flow(relays[0], relays[1], 1);
  const sameMBps = await bulk(same);
  const acrossMBps = await bulk(across);
  const sameRtt = await roundTrip(await flow(relays[0], relays[0], 2));
  const acrossRtt = await roundTrip(await flow(relays[0], relays[1], 3));
  const verdict = fresh >= TARGET_PER_SECOND ? 'yes' : 'NO';
  process.stdout.write(
    `cluster addresses  new clients/s over 3 relays, map in JetStream KV   ${Math.round(fresh).toLocaleString('en-US')}/s   ` +
      `${Math.round(known).toLocaleString('en-US')}/s returning   ${Math.round(lowdb).toLocaleString('en-US')}/s one relay on lowdb   ` +
      `target ≥ ${TARGET_PER_SECOND.toLocaleString('en-US')}/s   ${verdict}\n` +
      `cluster addresses  the KV map alone, 3 stores in one process             ${Math.round(alone).toLocaleString('en-US')}/s\n` +
      `cluster bulk       one flow, MB/s: across relays ${acrossMBps.toFixed(0)}   same relay ${sameMBps.toFixed(0)}   ` +
      `${(acrossMBps / sameMBps).toFixed(2)}×   target ≥ 0.5×   ${acrossMBps >= 0.5 * sameMBps ? 'yes' : 'NO'}\n` +
      `cluster 1 KiB RTT  ms p50 / p99: across relays ${acrossRtt.p50.toFixed(2)} / ${acrossRtt.p99.toFixed(2)}   ` +
      `same relay ${sameRtt.p50.toFixed(2)} / ${sameRtt.p99.toFixed(2)}   +${(acrossRtt.p50 - sameRtt.p50).toFixed(2)} ms p50   ` +
      `target ≤ +2 ms   ${acrossRtt.p50 - sameRtt.p50 <= 2 ? 'yes' : 'NO'}\n`,
  );
} finally {
  await Promise.allSettled(relays.map((r) => r.stop()));
  await nats.stop();
}
