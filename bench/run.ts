/**
 * `npm run bench`: runs the suites of issues 6 and 10 and prints the table (stdout), progress on stderr.
 *
 *   npm run bench -- [--duration S] [--size MiB] [--only bulk,small] [--json FILE] [--profile DIR]
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { runBench, SCENARIOS, DEFAULT_SIZES, type ScenarioName } from './bench.ts';
import { formatReport } from './lib/report.ts';
import { MIB } from './lib/stats.ts';

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function names(value: string): ScenarioName[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of list) {
    if (!(name in SCENARIOS)) throw new InvalidArgumentError(`unknown scenario "${name}"; one of ${Object.keys(SCENARIOS).join(', ')}`);
  }
  return list as ScenarioName[];
}

const d = DEFAULT_SIZES;
const program = new Command('bench')
  .description('AlphaNET relay benchmarks against baselines measured in the same run (issue 6)')
  .option('--duration <seconds>', 'length of paced and idle phases', positive, d.durationMs / 1000)
  .option('--size <MiB>', 'data moved by the bulk, aggregate and frozen tests', positive, d.bulkBytes / MIB)
  .option('--only <names>', `comma-separated subset of: ${Object.keys(SCENARIOS).join(', ')}`, names)
  .option('--json <file>', 'also write the results as JSON')
  .option('--runs <n>', 'measured repetitions per transfer (median reported)', positive, d.runs)
  .option('--flows <n>', 'concurrent flows (aggregate, small messages)', positive, d.flows)
  .option('--rate <n>', 'small messages per second', positive, d.messagesPerSecond)
  .option('--connects <n>', 'virtual connects in the handshake test', positive, d.totalConnects)
  .option('--concurrency <n>', 'connects in flight in the handshake test', positive, d.concurrentConnects)
  .option('--clients <n>', 'idle clients in the scale test', positive, d.idleClients)
  .option('--active <n>', 'active connections in the scale test', positive, d.activeConnections)
  .option('--prefill <n>', 'store entries before the address test', positive, d.prefillEntries)
  .option('--new-clients <n>', 'new clients in the address test', positive, d.newClients)
  .option('--load-entries <n>', 'store entries for the load-time figure', positive, d.loadEntries)
  .option('--user-size <MiB>', 'data moved per run by the API and tunnel bulk tests', positive, d.userPathBytes / MIB)
  .option('--tunnel-flows <n>', 'concurrent connections in the many-connection tunnel test', positive, d.tunnelFlows)
  .option('--link-size <MiB>', 'data moved per run over the long link', positive, d.linkBytes / MIB)
  .option('--link-delay <ms>', 'one-way delay of the long link', positive, d.linkDelayMs)
  .option('--link-rate <MB/s>', 'rate of each direction of the long link', positive, d.linkRateMBps)
  .option('--udp-rate <n>', 'datagrams per second offered in the UDP test', positive, d.udpRate)
  .option('--udp-size <bytes>', 'payload of each datagram in the UDP test (8..8192)', positive, d.udpPayloadBytes)
  .option('--profile <dir>', 'run relays, proxies and tunnel processes with --cpu-prof, writing profiles to this directory')
  .option('--node-flags <flags>', 'extra node flags for the relay and proxy processes, space-separated (e.g. "--trace-gc")')
  .option('--child-stdout <dir>', "write each server process's stdout (e.g. --trace-gc lines) to <dir>/<name>-<pid>.log")
  .parse();

const o = program.opts<{
  duration: number;
  size: number;
  only?: ScenarioName[];
  json?: string;
  runs: number;
  flows: number;
  rate: number;
  connects: number;
  concurrency: number;
  clients: number;
  active: number;
  prefill: number;
  newClients: number;
  loadEntries: number;
  userSize: number;
  tunnelFlows: number;
  linkSize: number;
  linkDelay: number;
  linkRate: number;
  udpRate: number;
  udpSize: number;
  profile?: string;
  nodeFlags?: string;
  childStdout?: string;
}>();

const nodeFlags = o.profile ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(o.profile)] : [];
if (o.profile) await mkdir(o.profile, { recursive: true });
if (o.nodeFlags) nodeFlags.push(...o.nodeFlags.split(/\s+/).filter(Boolean));
if (o.childStdout) {
  await mkdir(o.childStdout, { recursive: true });
  process.env.BENCH_CHILD_STDOUT_DIR = path.resolve(o.childStdout);
}

const report = await runBench({
  only: o.only,
  relay: { nodeFlags },
  sizes: {
    durationMs: o.duration * 1000,
    bulkBytes: Math.round(o.size * MIB),
    runs: Math.round(o.runs),
    flows: Math.round(o.flows),
    messagesPerSecond: o.rate,
    totalConnects: Math.round(o.connects),
    concurrentConnects: Math.round(o.concurrency),
    idleClients: Math.round(o.clients),
    activeConnections: Math.round(o.active),
    prefillEntries: Math.round(o.prefill),
    newClients: Math.round(o.newClients),
    loadEntries: Math.round(o.loadEntries),
    userPathBytes: Math.round(o.userSize * MIB),
    tunnelFlows: Math.round(o.tunnelFlows),
    linkBytes: Math.round(o.linkSize * MIB),
    linkDelayMs: o.linkDelay,
    linkRateMBps: o.linkRate,
    udpRate: o.udpRate,
    udpPayloadBytes: Math.max(8, Math.min(8192, Math.round(o.udpSize))),
  },
});

process.stdout.write(`${formatReport(report)}\n`);
if (o.json) await writeFile(o.json, `${JSON.stringify(report, null, 2)}\n`);
process.exitCode = report.scenarios.some((s) => s.error !== undefined) ? 1 : 0;
