/**
 * Result rows and the printed table. Each row puts one AlphaNET figure beside the baseline
 * taken in the same run, the comparison between them, and the target.
 */
import type { MachineInfo } from './machine.ts';

/** How a row compares AlphaNET with its baseline. */
export type Comparison =
  /** AlphaNET ÷ baseline (throughput, rates, memory). */
  | 'ratio'
  /** AlphaNET − baseline (added latency). */
  | 'added';

export interface Row {
  /** Scenario number and name, e.g. "1 bulk". */
  test: string;
  metric: string;
  unit: string;
  alphanet: number;
  baselineName: string;
  baseline: number;
  comparison: Comparison;
  /** The target in words, e.g. "≥ 0.90× proxy". */
  target: string;
  /** Whether the target is met; undefined when the row has no target. */
  met: boolean | undefined;
}

export interface ScenarioResult {
  name: string;
  rows: Row[];
  /** Everything else worth keeping in the JSON (sizes, counts, raw samples' summaries). */
  details: Record<string, unknown>;
  /** Set when the scenario could not run; its rows are then empty. */
  error?: string;
  /** Set when the scenario was not run here, and why (a missing nats-server); its rows are then empty. */
  skipped?: string;
}

export interface BenchReport {
  startedAt: string;
  machine: MachineInfo;
  options: Record<string, unknown>;
  scenarios: ScenarioResult[];
}

/** Formats a figure with sensible precision for its size. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

function compare(row: Row): string {
  if (row.comparison === 'added') {
    const added = row.alphanet - row.baseline;
    return Number.isFinite(added) ? `${added >= 0 ? '+' : ''}${formatNumber(added)} ${row.unit}` : 'n/a';
  }
  const r = row.alphanet / row.baseline;
  return row.baseline > 0 && Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a';
}

/** The results as an aligned plain-text table, machine line first. */
export function formatReport(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    `AlphaNET benchmark, ${report.startedAt}`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.totalMemoryMiB} MiB, ${m.platform}, Node ${m.nodeVersion}, load ${m.loadAverage.join(' ')}, e2e AEAD ${m.e2eAead}`,
    '',
  ];
  const header = ['test', 'metric', 'AlphaNET', 'baseline', 'vs baseline', 'target', 'met'];
  const table: string[][] = [header];
  for (const scenario of report.scenarios) {
    if (scenario.error !== undefined) {
      table.push([scenario.name, 'FAILED', scenario.error.split('\n')[0].slice(0, 100), '', '', '', '']);
      continue;
    }
    if (scenario.skipped !== undefined) {
      table.push([scenario.name, 'skipped', scenario.skipped, '', '', '', '']);
      continue;
    }
    for (const row of scenario.rows) {
      table.push([
        row.test,
        `${row.metric} (${row.unit})`,
        formatNumber(row.alphanet),
        `${formatNumber(row.baseline)} ${row.baselineName}`,
        compare(row),
        row.target,
        row.met === undefined ? '' : row.met ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c].length)));
  const render = (r: string[]): string => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  lines.push(render(table[0]), widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of table.slice(1)) lines.push(render(r));
  return lines.join('\n');
}

/**
 * One row per process comparing what it spent (CPU per GB, per connect) with and without the
 * feature measured: rows without a target, which say where the cost went.
 */
export function perProcessRows(
  test: string,
  processes: ReadonlyArray<readonly [key: string, label: string]>,
  metric: (label: string) => string,
  unit: string,
  measured: Readonly<Record<string, number>>,
  baselineName: string,
  baseline: Readonly<Record<string, number>>,
): Row[] {
  return processes.map(([key, label]) => ({
    test,
    metric: metric(label),
    unit,
    alphanet: measured[key] as number,
    baselineName,
    baseline: baseline[key] as number,
    comparison: 'ratio',
    target: '',
    met: undefined,
  }));
}
