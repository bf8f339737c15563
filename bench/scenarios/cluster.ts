/**
 * Cluster figures (issue 13, docs/CLUSTER.md): a nats-server with JetStream and three relay
 * processes started with --cluster, as users run them. New clients say Hello spread over the
 * three (the address map in JetStream KV: a create per new real IP, a block claim per 64), then
 * the same clients again (a cache hit, no write); one relay on lowdb under the same load; the KV
 * map alone; then one flow between two clients on one relay and one between clients on two
 * relays (through NATS): bulk throughput, and the round trip of a 1 KiB message echoed back. All
 * in one run, because on a shared machine only figures taken side by side compare.
 *
 * Each relay set first meets as many new clients as are measured (not counted): a relay in
 * service is warm, and a relay's first thousands of Hellos run mostly unoptimised code (measured:
 * about twice the CPU per client). Likewise each bulk path first carries 16 MiB on a flow of its
 * own (not counted). CPU per client and per MiB of every process is logged beside
 * the rates: on a shared machine it says where the cost lies better than a rate does.
 *
 * Targets (issue 13): new-client assignment with the map in KV ≥ 2,000/s; cross-relay throughput
 * ≥ 0.5× same-relay; cross-relay round trip ≤ 2 ms more than same-relay at the median.
 *
 * Run by `npm run bench -- --only cluster` (skipped, saying why, when nats-server is missing) and
 * by bench/cluster-bench.ts with its own sizes.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect } from '@nats-io/transport-node';
import { NatsAddressStore } from '../../storage/index.ts';
import { NATS_SERVER_BINARY, startNatsServer } from '../../specs/helpers/nats-server.ts';
import { AddressBlock, sourceAddress } from '../lib/addresses.ts';
import { forEachLimited } from '../lib/parallel.ts';
import type { ScenarioResult } from '../lib/report.ts';
import { MIB } from '../lib/stats.ts';
import { bulkTransfer, withDeadline } from '../load/drive.ts';
import type { VirtualConnection } from '../load/raw-client.ts';
import { LISTEN_PORT, RelayProcess, VirtualEnd, type Pair } from '../load/transports.ts';
import { PHASE_DEADLINE_MS, type BenchContext } from './context.ts';

/** New clients per second with the map in KV (issue 13). */
export const CLUSTER_NEW_CLIENTS_TARGET = 2000;
/** Cross-relay bulk throughput as a share of same-relay (issue 13). */
export const CLUSTER_BULK_TARGET = 0.5;
/** Added median round trip across relays, in ms (issue 13). */
export const CLUSTER_RTT_ADDED_TARGET_MS = 2;
const MESSAGE_BYTES = 1024;
/** Bytes per write in the bulk test. */
const WRITE_BYTES = 64 * 1024;
/**
 * Bytes each bulk path (same relay, across relays) carries on a flow of its own before it is
 * measured: 64 MiB. After 16 MiB the cross-relay path was still being compiled (successive 64 MiB
 * flows cost its relays 6,250, 4,375, 3,594 and 3,281 CPU-µs per MiB).
 */
const BULK_WARM_UP_BYTES = 64 * MIB;
/**
 * Bytes of each measured bulk flow (or the suite's --size, if smaller): 256 MiB. A 64 MiB flow
 * lasted ~0.25 s across relays, a few of /proc's 10 ms CPU ticks per process, with the flow's
 * start (windows opening across five processes) a sizeable part of it.
 */
export const CLUSTER_BULK_BYTES = 256 * MIB;
/** Real IPs of the warm-up clients start here (the measured ones at 0). */
const WARM_UP_FIRST = 100_000;

export interface ClusterSizes {
  /** New clients measured (and as many before, to warm each relay set). */
  clients: number;
  /** Clients saying Hello at once. */
  atOnce: number;
  /** Bytes of each bulk flow. */
  bulkBytes: number;
  /** 1 KiB round trips of each flow. */
  roundTrips: number;
}

export interface ClusterFigures {
  newPerSecond: number;
  returningPerSecond: number;
  lowdbPerSecond: number;
  kvAlonePerSecond: number;
  sameMBps: number;
  acrossMBps: number;
  sameRtt: { p50: number; p99: number };
  acrossRtt: { p50: number; p99: number };
  /** CPU each process spent, per client or per MiB: where the cost lies. */
  cpu: Record<'warmUp' | 'newClients' | 'returning' | 'bulkSame' | 'bulkAcross', string>;
}

export interface ClusterRunOptions {
  /** Node flags for the cluster's relays (e.g. --cpu-prof). @default [] */
  relayNodeFlags?: string[];
  /** Progress lines. */
  log(message: string): void;
}

/** Why the cluster figures cannot be taken here, or undefined when they can. */
export function clusterSkipReason(): string | undefined {
  if (!existsSync(NATS_SERVER_BINARY)) return `no nats-server at ${NATS_SERVER_BINARY} (.ci/install-nats.sh installs Debian's; NATS_SERVER names another path)`;
  return undefined;
}

async function hellos(relays: RelayProcess[], first: number, count: number, atOnce: number): Promise<number> {
  const seen = new Map<string, number>();
  const started = performance.now();
  await withDeadline(
    forEachLimited(count, Math.min(atOnce, count), async (i) => {
      const source = sourceAddress(AddressBlock.address, first + i);
      const client = await relays[i % relays.length].connect(source);
      seen.set(source, client.virtualIp);
      client.close();
    }),
    PHASE_DEADLINE_MS,
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

/** Runs `work` and says how much CPU each process spent on it per unit (µs per client, µs per MiB). */
export async function withCpu<T>(relays: RelayProcess[], natsPid: number, units: number, unit: string, work: () => Promise<T>): Promise<{ result: T; cpu: string }> {
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

/** The map alone: three stores (three connections) in this process, `atOnce` calls in flight. */
async function storeAlone(url: string, clients: number, atOnce: number): Promise<number> {
  const connections = await Promise.all([1, 2, 3].map(() => connect({ servers: url, noAsyncTraces: true })));
  try {
    const stores = await Promise.all(connections.map((connection, i) => NatsAddressStore.open({ connection, relayId: `s${i}`, bucket: 'bench-alone' })));
    const started = performance.now();
    await forEachLimited(clients, Math.min(atOnce, clients), (i) => stores[i % 3].findOrAllocate(`12.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`).then(() => {}));
    const perSecond = clients / ((performance.now() - started) / 1000);
    await Promise.all(stores.map((s) => s.close()));
    return perSecond;
  } finally {
    await Promise.all(connections.map((c) => c.close()));
  }
}

/** One flow from a client of `from` to a listener on `to` (retrying while the cluster learns of the listener). */
export async function flow(from: RelayProcess, to: RelayProcess, n: number): Promise<Pair> {
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

/** 1 KiB from a, echoed by b, `count` times one after another: the median and p99 in ms. */
async function roundTrip(pair: Pair, count: number): Promise<{ p50: number; p99: number }> {
  pair.b.setOnData((chunk) => pair.b.write(chunk));
  const message = Buffer.alloc(MESSAGE_BYTES, 7);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
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

export async function bulk(pair: Pair, bytes: number): Promise<number> {
  const pattern = Buffer.alloc(WRITE_BYTES);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31) & 255;
  const result = await bulkTransfer([pair], pattern, bytes, WRITE_BYTES, PHASE_DEADLINE_MS);
  return result.bytes / result.seconds / 1e6;
}

/** Starts the nats-server and the relays, takes every figure, stops them. */
export async function measureCluster(sizes: ClusterSizes, options: ClusterRunOptions): Promise<ClusterFigures> {
  const { clients, atOnce } = sizes;
  const nats = await startNatsServer();
  const natsPid = nats.child.pid!;
  const relays: RelayProcess[] = [];
  try {
    for (const id of ['b1', 'b2', 'b3']) relays.push(await RelayProcess.start({ extraArgs: ['--cluster', nats.url, '--relay-id', id], nodeFlags: options.relayNodeFlags ?? [] }));
    const perClient = (first: number) => withCpu(relays, natsPid, clients, 'µs per client', () => hellos(relays, first, clients, atOnce));
    const warmUp = await perClient(WARM_UP_FIRST);
    const fresh = await perClient(0);
    const known = await perClient(0);
    options.log(`  new clients ${fresh.result.toFixed(0)}/s, returning ${known.result.toFixed(0)}/s; ${fresh.cpu}`);
    // The same load on one relay with its lowdb store (fsynced, as shipped), warmed the same way.
    const single = await RelayProcess.start({ nodeFlags: options.relayNodeFlags ?? [] });
    let lowdb: number;
    try {
      await hellos([single], WARM_UP_FIRST, clients, atOnce);
      lowdb = await hellos([single], 0, clients, atOnce);
    } finally {
      await single.stop();
    }
    const alone = await storeAlone(nats.url, clients, atOnce);
    // Both paths warmed on flows of their own first, as for Hellos above: a relay in service has run
    // its data path (and, across relays, its link and NATS client) long since; cold, the first
    // MiBs of a 64 MiB flow run unoptimised code and the figure says more about V8 than the path.
    await bulk(await flow(relays[0], relays[0], 4), BULK_WARM_UP_BYTES);
    await bulk(await flow(relays[0], relays[1], 5), BULK_WARM_UP_BYTES);
    const same = await flow(relays[0], relays[0], 0);
    const across = await flow(relays[0], relays[1], 1);
    const mib = sizes.bulkBytes / MIB;
    const bulkSame = await withCpu(relays, natsPid, mib, 'µs per MiB', () => bulk(same, sizes.bulkBytes));
    const bulkAcross = await withCpu(relays, natsPid, mib, 'µs per MiB', () => bulk(across, sizes.bulkBytes));
    options.log(`  bulk across ${bulkAcross.result.toFixed(0)} MB/s, same relay ${bulkSame.result.toFixed(0)} MB/s; across: ${bulkAcross.cpu}; same relay: ${bulkSame.cpu}`);
    const sameRtt = await roundTrip(await flow(relays[0], relays[0], 2), sizes.roundTrips);
    const acrossRtt = await roundTrip(await flow(relays[0], relays[1], 3), sizes.roundTrips);
    return {
      newPerSecond: fresh.result,
      returningPerSecond: known.result,
      lowdbPerSecond: lowdb,
      kvAlonePerSecond: alone,
      sameMBps: bulkSame.result,
      acrossMBps: bulkAcross.result,
      sameRtt,
      acrossRtt,
      cpu: { warmUp: warmUp.cpu, newClients: fresh.cpu, returning: known.cpu, bulkSame: bulkSame.cpu, bulkAcross: bulkAcross.cpu },
    };
  } finally {
    await Promise.allSettled(relays.map((r) => r.stop()));
    await nats.stop();
  }
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The figures as the lines docs/CLUSTER.md quotes, each with its target and whether it is met. */
export function formatClusterFigures(f: ClusterFigures): string {
  const bulkRatio = f.acrossMBps / f.sameMBps;
  const added = f.acrossRtt.p50 - f.sameRtt.p50;
  return (
    `cluster addresses  new clients/s over 3 relays, map in JetStream KV   ${count(f.newPerSecond)}/s   ` +
    `${count(f.returningPerSecond)}/s returning   ${count(f.lowdbPerSecond)}/s one relay on lowdb   ` +
    `target ≥ ${count(CLUSTER_NEW_CLIENTS_TARGET)}/s   ${f.newPerSecond >= CLUSTER_NEW_CLIENTS_TARGET ? 'yes' : 'NO'}\n` +
    `cluster addresses  the KV map alone, 3 stores in one process             ${count(f.kvAlonePerSecond)}/s\n` +
    `cluster bulk       one flow, MB/s: across relays ${f.acrossMBps.toFixed(0)}   same relay ${f.sameMBps.toFixed(0)}   ` +
    `${bulkRatio.toFixed(2)}×   target ≥ ${CLUSTER_BULK_TARGET}×   ${bulkRatio >= CLUSTER_BULK_TARGET ? 'yes' : 'NO'}\n` +
    `cluster 1 KiB RTT  ms p50 / p99: across relays ${f.acrossRtt.p50.toFixed(2)} / ${f.acrossRtt.p99.toFixed(2)}   ` +
    `same relay ${f.sameRtt.p50.toFixed(2)} / ${f.sameRtt.p99.toFixed(2)}   +${added.toFixed(2)} ms p50   ` +
    `target ≤ +${CLUSTER_RTT_ADDED_TARGET_MS} ms   ${added <= CLUSTER_RTT_ADDED_TARGET_MS ? 'yes' : 'NO'}\n`
  );
}

/** `npm run bench -- --only cluster`: the figures above as table rows, or skipped with the reason. */
export async function clusterScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = '13 cluster';
  const skipped = clusterSkipReason();
  if (skipped !== undefined) {
    context.log(`  skipped: ${skipped}`);
    return { name, rows: [], details: {}, skipped };
  }
  const { newClients, bulkBytes } = context.sizes;
  const sizes: ClusterSizes = {
    clients: newClients,
    atOnce: 500,
    bulkBytes: Math.min(bulkBytes, CLUSTER_BULK_BYTES),
    roundTrips: Math.min(2000, Math.max(20, Math.floor(newClients / 2.5))),
  };
  const f = await measureCluster(sizes, { relayNodeFlags: context.relay.nodeFlags, log: context.log });
  const bulkRatio = f.acrossMBps / f.sameMBps;
  const added = f.acrossRtt.p50 - f.sameRtt.p50;
  return {
    name,
    rows: [
      {
        test: name,
        metric: 'new clients/s over 3 relays, map in KV',
        unit: '/s',
        alphanet: f.newPerSecond,
        baselineName: 'one lowdb relay',
        baseline: f.lowdbPerSecond,
        comparison: 'ratio',
        target: `≥ ${count(CLUSTER_NEW_CLIENTS_TARGET)}/s`,
        met: f.newPerSecond >= CLUSTER_NEW_CLIENTS_TARGET,
      },
      {
        test: name,
        metric: 'bulk across relays, 1 flow',
        unit: 'MB/s',
        alphanet: f.acrossMBps,
        baselineName: 'same relay',
        baseline: f.sameMBps,
        comparison: 'ratio',
        target: `≥ ${CLUSTER_BULK_TARGET.toFixed(2)}× same relay`,
        met: bulkRatio >= CLUSTER_BULK_TARGET,
      },
      {
        test: name,
        metric: '1 KiB round trip p50 across relays',
        unit: 'ms',
        alphanet: f.acrossRtt.p50,
        baselineName: 'same relay',
        baseline: f.sameRtt.p50,
        comparison: 'added',
        target: `≤ +${CLUSTER_RTT_ADDED_TARGET_MS} ms`,
        met: added <= CLUSTER_RTT_ADDED_TARGET_MS,
      },
    ],
    details: { sizes, figures: f },
  };
}
