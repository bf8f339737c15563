/**
 * Smoke test of the benchmark harness: every scenario runs end to end on tiny sizes against a
 * real relay and real baselines, and the report has the shape the table and --json rely on.
 * Speed is never asserted here (issue 6: speed lives in benchmarks); correctness of the bytes is.
 */
import t from 'tap';
import { runBench, SCENARIOS, type ScenarioName } from '../../bench/bench.ts';
import { formatReport } from '../../bench/lib/report.ts';
import { MIB } from '../../bench/lib/stats.ts';
import { bulkTransfer, makePattern, matchesPattern, PATTERN_BYTES } from '../../bench/load/drive.ts';
import type { Pair, StreamEnd } from '../../bench/load/transports.ts';
import { clusterSkipReason } from '../../bench/scenarios/cluster.ts';
import { NATS_SERVER_BINARY } from '../helpers/nats-server.ts';
import { existsSync } from 'node:fs';

t.test('every scenario runs on tiny sizes and reports figures against a baseline', async (t) => {
  const lines: string[] = [];
  const report = await runBench({
    log: (line) => lines.push(line),
    sizes: {
      bulkBytes: 1 * MIB,
      runs: 1,
      durationMs: 300,
      flows: 3,
      messagesPerSecond: 300,
      concurrentConnects: 6,
      totalConnects: 24,
      idleClients: 12,
      activeConnections: 3,
      prefillEntries: 200,
      newClients: 12,
      loadEntries: 0,
      frozenFlows: 2,
      userPathBytes: 1 * MIB,
      tunnelFlows: 3,
      linkBytes: 256 * 1024,
      linkDelayMs: 2,
      linkRateMBps: 50,
      udpRate: 500,
      udpPayloadBytes: 64,
    },
  });
  const names = Object.keys(SCENARIOS) as ScenarioName[];
  t.equal(report.scenarios.length, names.length, 'one result per scenario');
  t.match(report.machine, { cpu: String, cores: Number, nodeVersion: process.version });
  for (const scenario of report.scenarios) {
    t.equal(scenario.error, undefined, `${scenario.name} ran without error (${scenario.error ?? ''})\n${lines.join('\n')}`);
    // Only the cluster lines may be skipped, and only where nats-server is missing.
    if (scenario.skipped !== undefined) {
      t.equal(scenario.name, '13 cluster', `${scenario.name} skipped: ${scenario.skipped}`);
      t.equal(scenario.skipped, clusterSkipReason(), 'skipped only for the reason the scenario gives');
      t.notOk(existsSync(NATS_SERVER_BINARY), 'skipped only without nats-server');
      continue;
    }
    t.ok(scenario.rows.length >= 1, `${scenario.name} has rows`);
    for (const row of scenario.rows) {
      t.ok(Number.isFinite(row.alphanet) && row.alphanet >= 0, `${scenario.name} ${row.metric}: AlphaNET figure ${row.alphanet}`);
      t.ok(Number.isFinite(row.baseline) && row.baseline >= 0, `${scenario.name} ${row.metric}: baseline figure ${row.baseline}`);
      t.ok(row.baselineName.length > 0);
      if (row.target !== '' && row.target !== 'bounded') t.type(row.met, 'boolean', `${row.metric} says whether its target is met`);
    }
  }
  const scale = report.scenarios.find((s) => s.name === '5 scale')!;
  t.match(scale.details, { idleClients: 12, relay: { rssAfter: Number, loaded: { samples: Number } } });
  const table = formatReport(report);
  t.match(table, /machine: .+, \d+ cores, .+Node v\d+/);
  const tunnel = report.scenarios.find((s) => s.name === '9 tunnel bulk')!;
  t.match(tunnel.details, { counts: [1, 3], figures: { 'node×3': Object, tunnel: Object } }, 'tunnel bulk ran 1 and 3 connections through each chain');
  t.ok(tunnel.rows.some((r) => r.metric === 'throughput, 3 connections' && r.target !== ''), 'the many-connection tunnel row has a target');
  const api = report.scenarios.find((s) => s.name === '8 API bulk')!;
  t.same(api.rows.map((r) => r.metric), [
    'send() → for await, 1 connection',
    'duplex() piped, 1 connection',
    'send() → for await, e2e (Noise), both ends in the bench process',
    'e2e CPU per GB, bench process (both clients)',
    'e2e CPU per GB, relay',
    'AEAD alone: seal and open of the same bytes, one thread',
    'send() → peer process, e2e (Noise), 1 connection',
    'e2e CPU per GB, two processes, bench process (sender)',
    'e2e CPU per GB, two processes, peer process (receiver)',
    'e2e CPU per GB, two processes, relay',
  ]);
  t.match(api.rows[2], { target: '', met: undefined }, 'the e2e line with both ends on one thread says what that costs, with no target');
  t.match(api.rows[6], { target: '≥ 0.70× plaintext', met: Boolean }, 'the e2e line with the receiver in a process of its own carries the target and whether it is met');
  t.match(api.details, { e2eTwoProcesses: { cpuSecondsPerGb: { bench: Number, peer: Number, relay: Number } }, plaintextTwoProcesses: { mbps: Number } });
  t.ok(tunnel.rows.some((r) => r.metric === 'throughput, 1 connection, e2e (Noise)' && r.target !== ''), 'the e2e tunnel row has a target');
  t.ok(tunnel.rows.some((r) => r.metric === 'throughput, 1 connection, e2e CPU per GB, expose'), 'and the CPU per GB of each tunnel process');
  const handshakes = report.scenarios.find((s) => s.name === '4 handshakes')!;
  t.match(
    handshakes.rows.find((r) => r.metric.startsWith('library connects/s with e2e handshake')),
    { target: '≥ 1000/s', met: Boolean, baselineName: 'without e2e' },
    'handshakes per second with key exchange, against the target',
  );

  for (const figures of [api.details.raw, api.details.send, api.details.duplex] as Array<{ cpuSecondsPerGb: Record<string, number> }>) {
    t.match(figures.cpuSecondsPerGb, { bench: Number, relay: Number }, 'CPU per GB of every process');
  }
  const link = report.scenarios.find((s) => s.name === '11 long link')!;
  t.match(link.details, { linkDelayMs: 2, linkRateMBps: 50, raw: { cpuSecondsPerGb: { 'link 1': Number, proxy: Number } }, alphanet: { cpuSecondsPerGb: { link: Number, relay: Number } } });
  const udp = report.scenarios.find((s) => s.name === '12 udp')!;
  t.same(udp.rows.map((r) => [r.metric, r.unit, r.baselineName]), [
    ['datagrams/s at 500/s offered (64 B)', 'pkt/s', 'direct UDP'],
    ['loss at 500/s offered', '%', 'direct UDP'],
  ]);
  t.match(udp.details, { rate: 500, payloadBytes: 64, direct: { sent: Number, received: Number, corrupt: 0 }, tunnel: { sent: Number, received: Number, corrupt: 0 } });
  for (const test of ['1 bulk', '2 aggregate', '3 small msgs', '4 handshakes', '5 scale', '6 addresses', '7 frozen receiver', '8 API bulk', '9 tunnel bulk', '10 tunnel rr', '11 long link', '12 udp', '13 cluster']) {
    t.match(table, test);
  }
  t.same(JSON.parse(JSON.stringify(report)).scenarios.length, names.length, 'the report survives JSON');
});

/** Two in-memory ends whose delivery can be tampered with. */
function memoryPair(tamper: (chunk: Buffer) => Buffer): Pair {
  let deliver: (chunk: Buffer) => void = () => {};
  const a: StreamEnd = {
    write: (chunk) => {
      const copy = tamper(Buffer.from(chunk));
      queueMicrotask(() => deliver(copy));
      return true;
    },
    setOnDrain: () => {},
    setOnData: () => {},
    freeze: () => {},
    close: () => {},
  };
  const b: StreamEnd = { ...a, setOnData: (handler) => (deliver = handler) };
  return { a, b };
}

t.test('a transfer whose bytes change on the way fails instead of reporting a figure', async (t) => {
  const pattern = makePattern();
  const intact = await bulkTransfer([memoryPair((c) => c)], pattern, 4 * PATTERN_BYTES, 16 * 1024, 5000);
  t.equal(intact.bytes, 4 * PATTERN_BYTES);
  let n = 0;
  const flipThird = (chunk: Buffer): Buffer => {
    if (++n === 3) chunk[100] ^= 0xff;
    return chunk;
  };
  await t.rejects(bulkTransfer([memoryPair(flipThird)], pattern, 4 * PATTERN_BYTES, 16 * 1024, 5000), {
    code: 'ERR_BENCH_CORRUPT',
    message: /offset 32768/,
  });
  t.notOk(matchesPattern(pattern, Buffer.from(pattern.subarray(1, 10)), 0));
  t.ok(matchesPattern(pattern, Buffer.concat([pattern.subarray(PATTERN_BYTES - 5), pattern.subarray(0, 7)]), PATTERN_BYTES - 5));
});
