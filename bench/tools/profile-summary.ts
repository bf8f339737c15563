/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. `npm run bench -- --profile DIR`):
 * self time per function, heaviest first, so the relay's hot path can be read in a terminal.
 *
 *   node --import tsx bench/tools/profile-summary.ts FILE.cpuprofile [top=25]
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topText] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: profile-summary FILE.cpuprofile [top]\n');
  process.exit(2);
}
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfMicros = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id)!;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === '' ? '' : ` ${url.replace(/^file:\/\/.*?\/(node_modules|actors|protocol|storage|bench)\//, '$1/')}:${lineNumber + 1}`;
  const key = `${functionName || '(anonymous)'}${where}`;
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  selfMicros.set(key, (selfMicros.get(key) ?? 0) + dt);
});
const rows = [...selfMicros].sort((a, b) => b[1] - a[1]).slice(0, Number(topText ?? 25));
process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled\n`);
for (const [key, micros] of rows) {
  process.stdout.write(`${((100 * micros) / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(6)} ms  ${key}\n`);
}
