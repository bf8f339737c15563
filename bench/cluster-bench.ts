/**
 * The cluster figures of issue 13 on their own (bench/scenarios/cluster.ts says what is measured
 * and why): a nats-server, three --cluster relays and one lowdb relay, in one run.
 *
 *   node --import tsx bench/cluster-bench.ts [new clients=5000] [at once=500] [bulk MiB=256] [round trips=2000]
 *
 * Prints the four lines docs/CLUSTER.md quotes on stdout; progress and the CPU each process spent
 * (per client, per MiB) on stderr. `CLUSTER_BENCH_PROFILE=DIR` runs the relays with --cpu-prof,
 * writing their profiles there (bench/tools/profile-summary.ts reads them).
 *
 * `npm run bench -- --only cluster` takes the same figures as table rows.
 */
import { clusterSkipReason, formatClusterFigures, measureCluster } from './scenarios/cluster.ts';

const clients = Number(process.argv[2] ?? 5000);
const atOnce = Number(process.argv[3] ?? 500);
const bulkBytes = Number(process.argv[4] ?? 256) * 1024 * 1024;
const roundTrips = Number(process.argv[5] ?? 2000);
const profileDir = process.env.CLUSTER_BENCH_PROFILE;

const skipped = clusterSkipReason();
if (skipped !== undefined) {
  process.stdout.write(`cluster            skipped: ${skipped}\n`);
} else {
  const figures = await measureCluster(
    { clients, atOnce, bulkBytes, roundTrips },
    { relayNodeFlags: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [], log: (line) => process.stderr.write(`${line}\n`) },
  );
  for (const [phase, cpu] of Object.entries(figures.cpu)) process.stderr.write(`  ${phase}: ${cpu}\n`);
  process.stdout.write(formatClusterFigures(figures));
}
