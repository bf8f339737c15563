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
import { readFile } from 'node:fs/promises';
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
/** New clients each relay set meets before it is measured, as many as are measured (their real IPs: from WARM_UP_FIRST on). */
const WARM_UP_CLIENTS = clients;
const WARM_UP_FIRST = 100_000;
/** `CLUSTER_BENCH_PROFILE=DIR`: the cluster's relays run with --cpu-prof, writing their profiles there. */
const PROFILE_DIR = process.env.CLUSTER_BENCH_PROFILE;
const relayNodeFlags = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];

async function hellos(relays: RelayProcess[], first = 0, count = clients): Promise<number> {
  const seen = new Map<string, number>();
  const started = performance.now();
  await withDeadline(
    forEachLimited(count, atOnce, async (i) => {
      const source = sourceAddress(AddressBlock.address, first + i);
      const client = await relays[i % relays.length].connect(source);
      seen.set(source, client.virtualIp);
      client.close();
    }),
    DEADLINE_MS,
    `${count} clients saying Hello`,
  );
  const seconds = (performance.now() - started) / 1000;
  if (new Set(seen.values()).size !== count) throw new Error(`${count} clients got ${new Set(seen.values()).size} distinct virtual IPs`);
  return count / seconds;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Runs `work` and says how much CPU each process spent on it per unit (µs per client, ms per
 * 64 MiB…): where the cost lies, which on a shared machine says more than a rate.
 */
async function withCpu<T>(relays: RelayProcess[], natsPid: number, units: number, unit: string, work: () => Promise<T>): Promise<{ result: T; cpu: string }> {
  const sample = () => Promise.all([...relays.map((r) => r.child.cpuSeconds()), cpuSecondsOf(natsPid)]);
  const before = await sample();
  const self = process.cpuUsage();
  const result = await work();
  const after = await sample();
  const used = process.cpuUsage(self);
  const per = (seconds: number) => Math.round((seconds * 1e6) / units);
  const relayParts = relays.map((_, i) => per(after[i] - before[i]));
  const cpu =
    `CPU ${unit}: relays ${relayParts.reduce((a, b) => a + b, 0)} (${relayParts.join(' + ')}), ` +
    `nats-server ${per(after[relays.length] - before[relays.length])}, bench clients ${per((used.user + used.system) / 1e6)}`;
  return { result, cpu };
}

async function hellosWithCpu(relays: RelayProcess[], natsPid: number, first = 0, count = clients): Promise<{ perSecond: number; cpu: string }> {
  const { result, cpu } = await withCpu(relays, natsPid, count, 'µs per client', () => hellos(relays, first, count));
  return { perSecond: result, cpu };
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
  for (const id of ['b1', 'b2', 'b3']) relays.push(await RelayProcess.start({ extraArgs: ['--cluster', nats.url, '--relay-id', id], nodeFlags: relayNodeFlags }));
  // Relays in service are warm; a relay's first thousand Hellos run mostly unoptimised code
  // (measured: twice the CPU per client), so each relay set meets WARM_UP_CLIENTS new clients first.
  process.stderr.write(`warm-up:     ${(await hellosWithCpu(relays, nats.child.pid!, WARM_UP_FIRST, WARM_UP_CLIENTS)).cpu}\n`);
  const freshRun = await hellosWithCpu(relays, nats.child.pid!);
  const knownRun = await hellosWithCpu(relays, nats.child.pid!);
  const fresh = freshRun.perSecond;
  const known = knownRun.perSecond;
  process.stderr.write(`new clients: ${freshRun.cpu}\nreturning:   ${knownRun.cpu}\n`);
  // The same load on one relay with its lowdb store (fsynced, as shipped), in the same run: the
  // machine is shared, so only figures taken side by side compare.
  const single = await RelayProcess.start();
  let lowdb: number;
  try {
    await hellos([single], WARM_UP_FIRST, WARM_UP_CLIENTS);
    lowdb = await hellos([single]);
  } finally {
    await single.stop();
  }
  const alone = await storeAlone(nats.url);
  const same = await flow(relays[0], relays[0], 0);
  const across = await flow(relays[0], relays[1], 1);
  const t0 = process.hrtime.bigint() / 1000n;
  const mib = bulkBytes / 1024 / 1024;
  const sameRun = await withCpu(relays, nats.child.pid!, mib, 'µs per MiB', () => bulk(same));
  const t1 = process.hrtime.bigint() / 1000n;
  const acrossRun = await withCpu(relays, nats.child.pid!, mib, 'µs per MiB', () => bulk(across));
  const sameMBps = sameRun.result;
  const acrossMBps = acrossRun.result;
  process.stderr.write(`bulk same relay:   ${sameRun.cpu}\nbulk across:       ${acrossRun.cpu}\n`);
  if (PROFILE_DIR) process.stderr.write(`profile windows (µs, monotonic): bulk same relay ${t0}–${t1}, across ${t1}–${process.hrtime.bigint() / 1000n}\n`);
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
