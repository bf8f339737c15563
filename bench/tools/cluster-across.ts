/**
 * The cross-relay bulk flow of the cluster bench alone (bench/scenarios/cluster.ts), for profiling
 * the link path: a nats-server, two --cluster relays, a warm-up flow, then `runs` measured flows
 * of `MiB` each, each printed with the CPU per MiB of every process.
 *
 *   node --import tsx bench/tools/cluster-across.ts [MiB=256] [runs=1]
 *
 * `CLUSTER_ACROSS_NODE_FLAGS='--perf-basic-prof …'` adds node flags to the relays.
 * `CLUSTER_ACROSS_PIDS=FILE` writes the relays', nats-server's and this process's pids there
 * before each measured flow (for `perf record -p`). `CLUSTER_BENCH_PROFILE=DIR` runs the relays with --cpu-prof (bench/tools/profile-summary.ts).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { startNatsServer } from '../../specs/helpers/nats-server.ts';
import { MIB } from '../lib/stats.ts';
import { RelayProcess } from '../load/transports.ts';
import { bulk, flow, withCpu } from '../scenarios/cluster.ts';

const mib = Number(process.argv[2] ?? 256);
const runs = Number(process.argv[3] ?? 1);
const profileDir = process.env.CLUSTER_BENCH_PROFILE;
const pidsFile = process.env.CLUSTER_ACROSS_PIDS;
const nodeFlags = [...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...(process.env.CLUSTER_ACROSS_NODE_FLAGS ?? '').split(' ').filter(Boolean)];

const nats = await startNatsServer();
const relays: RelayProcess[] = [];
try {
  for (const id of ['b1', 'b2']) relays.push(await RelayProcess.start({ extraArgs: ['--cluster', nats.url, '--relay-id', id], nodeFlags }));
  await bulk(await flow(relays[0], relays[1], 5), 16 * MIB);
  for (let run = 0; run < runs; run++) {
    const across = await flow(relays[0], relays[1], 10 + run);
    // For `perf record -p`: the processes of the flow about to be measured.
    if (pidsFile) await writeFile(pidsFile, `${relays.map((r) => r.child.pid).join(' ')} ${nats.child.pid} ${process.pid}\n`);
    const split = async () => Promise.all([...relays.map((r) => r.child.pid), nats.child.pid!].map(async (pid) => (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ').slice(11, 13).map(Number)));
    const before = await split();
    const measured = await withCpu(relays, nats.child.pid!, mib, 'µs per MiB', () => bulk(across, mib * MIB));
    const after = await split();
    // User and system time apart (µs per MiB): where a process's share is the kernel's.
    const parts = after.map(([u, k], i) => `${Math.round((10_000 * (u - before[i][0])) / mib)}u/${Math.round((10_000 * (k - before[i][1])) / mib)}s`);
    process.stdout.write(`across ${measured.result.toFixed(0)} MB/s; ${measured.cpu}; user/system: ${parts.join(' ')}\n`);
  }
} finally {
  await Promise.allSettled(relays.map((r) => r.stop()));
  await nats.stop();
}
