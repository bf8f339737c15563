/**
 * The benchmark suite of issue 6 as a function, so `npm run bench` and the smoke spec run the
 * same code: each scenario starts its own servers, measures AlphaNET and its baseline in the
 * same run, and returns rows for the table.
 */
import { describeMachine } from './lib/machine.ts';
import type { BenchReport, ScenarioResult } from './lib/report.ts';
import { MIB } from './lib/stats.ts';
import { makePattern } from './load/drive.ts';
import type { RelayStartOptions } from './load/transports.ts';
import { closeShared, type BenchContext, type BenchSizes } from './scenarios/context.ts';
import { aggregateScenario, bulkScenario } from './scenarios/throughput.ts';
import { smallMessagesScenario } from './scenarios/small-messages.ts';
import { handshakeScenario } from './scenarios/handshake.ts';
import { scaleScenario } from './scenarios/scale.ts';
import { addressScenario } from './scenarios/address.ts';
import { frozenScenario } from './scenarios/frozen.ts';
import { apiBulkScenario } from './scenarios/api-bulk.ts';
import { tunnelBulkScenario, tunnelPingPongScenario } from './scenarios/tunnel.ts';
import { longLinkScenario } from './scenarios/long-link.ts';
import { udpScenario } from './scenarios/udp.ts';
import { clusterScenario } from './scenarios/cluster.ts';

/** Scenario names for --only, in the order of issues 6 and 10. */
export const SCENARIOS = {
  bulk: bulkScenario,
  aggregate: aggregateScenario,
  small: smallMessagesScenario,
  handshake: handshakeScenario,
  scale: scaleScenario,
  address: addressScenario,
  frozen: frozenScenario,
  // The user path (issue 10): the client library, the tunnels, a long link.
  api: apiBulkScenario,
  tunnel: tunnelBulkScenario,
  'tunnel-rr': tunnelPingPongScenario,
  'long-link': longLinkScenario,
  // Datagrams (issue 14): UDP through the --udp tunnels.
  udp: udpScenario,
  // Several relays on NATS (issue 13); skipped, saying why, without nats-server.
  cluster: clusterScenario,
} as const satisfies Record<string, (context: BenchContext) => Promise<ScenarioResult>>;
export type ScenarioName = keyof typeof SCENARIOS;

/** Sizes of `npm run bench` without options: the figures, within a few minutes on 2 cores. */
export const DEFAULT_SIZES: BenchSizes = {
  bulkBytes: 512 * MIB,
  runs: 5,
  durationMs: 3000,
  flows: 100,
  messagesPerSecond: 10_000,
  concurrentConnects: 1000,
  totalConnects: 5000,
  idleClients: 10_000,
  activeConnections: 1000,
  prefillEntries: 100_000,
  newClients: 5000,
  loadEntries: 1_000_000,
  frozenFlows: 10,
  userPathBytes: 256 * MIB,
  tunnelFlows: 50,
  linkBytes: 128 * MIB,
  linkDelayMs: 25,
  linkRateMBps: 100,
  udpRate: 20_000,
  udpPayloadBytes: 512,
};

export interface BenchOptions {
  /** Which scenarios to run. @default every one, in order */
  only?: ScenarioName[];
  /** Overrides of DEFAULT_SIZES. @default {} */
  sizes?: Partial<BenchSizes>;
  /** How relays are started (node flags for profiling, extra relay flags). @default {} */
  relay?: RelayStartOptions;
  /** Progress lines. @default writes to stderr */
  log?: (message: string) => void;
}

/** Runs the chosen scenarios one after another; a failing scenario is reported, not thrown. */
export async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const sizes = { ...DEFAULT_SIZES, ...options.sizes };
  const log = options.log ?? ((message: string) => process.stderr.write(`${message}\n`));
  const context: BenchContext = { sizes, pattern: makePattern(), relay: options.relay ?? {}, log, shared: new Map(), nextFlowAddress: 0 };
  const names = options.only ?? (Object.keys(SCENARIOS) as ScenarioName[]);
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: describeMachine(),
    options: { ...sizes, bulkMiB: sizes.bulkBytes / MIB, only: names },
    scenarios: [],
  };
  try {
    await runScenarios(context, names, report);
  } finally {
    await closeShared(context);
  }
  return report;
}

async function runScenarios(context: BenchContext, names: ScenarioName[], report: BenchReport): Promise<void> {
  const { log } = context;
  for (const name of names) {
    log(`${name}…`);
    const started = performance.now();
    try {
      report.scenarios.push(await SCENARIOS[name](context));
    } catch (error) {
      const message = error instanceof Error ? `${(error as { code?: string }).code ?? error.name}: ${error.message}` : String(error);
      log(`  failed: ${message}`);
      report.scenarios.push({ name, rows: [], details: {}, error: message });
    }
    log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}
