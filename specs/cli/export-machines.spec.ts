import t from 'tap';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportMachines } from '../../cli/export-machines.ts';
import { DEFAULT_EXPORT_DIR, discoverMachines, exportFiles, toMermaid } from '../../actors/observe/machine-export.ts';

t.test('the committed docs/machines export is in step with machines/', async (t) => {
  const machines = await discoverMachines();
  t.ok(machines.length > 0, 'at least one machine is discovered');
  const expected = exportFiles(machines);
  const committed = (await readdir(DEFAULT_EXPORT_DIR)).filter((f) => f.endsWith('.json') || f.endsWith('.mmd')).sort();
  t.same(committed, expected.map((f) => f.name).sort(), 'same files (run `npm run machines` after changing a machine)');
  for (const file of expected) {
    const onDisk = await readFile(path.join(DEFAULT_EXPORT_DIR, file.name), 'utf8').catch(() => '');
    t.equal(onDisk, file.content, `${file.name} is current (run \`npm run machines\`)`);
  }
});

t.test('exports a fixture machine as JSON definition, config and Mermaid, and drops stale files', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-machines-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const machinesDir = path.join(dir, 'machines');
  const outDir = path.join(dir, 'out');
  await mkdir(machinesDir);
  await mkdir(outDir);
  await writeFile(path.join(outDir, 'gone.json'), '{}');
  await writeFile(path.join(outDir, 'README.md'), 'kept');
  // The fixture lives outside the project, so it names xstate by its resolved URL and says it is ESM.
  await writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
  await writeFile(
    path.join(machinesDir, 'door.machine.ts'),
    `import { setup } from '${import.meta.resolve('xstate')}';
export const doorMachine = setup({ guards: { unlocked: () => true }, delays: { autoClose: 1000 } }).createMachine({
  id: 'door', initial: 'closed',
  states: {
    closed: { on: { 'door.open': { target: 'opened', guard: 'unlocked' } } },
    opened: { initial: 'swinging', states: { swinging: { after: { autoClose: 'still' } }, still: {} }, on: { 'door.close': 'closed', 'door.break': 'broken' } },
    broken: { type: 'final' },
  },
});
export const notAMachine = 42;
`,
  );
  const written = await exportMachines({ machinesDir, outDir });
  t.same(written.sort(), ['door.config.json', 'door.json', 'door.mmd', 'index.json']);
  t.same((await readdir(outDir)).sort(), ['README.md', 'door.config.json', 'door.json', 'door.mmd', 'index.json']);

  const definition = JSON.parse(await readFile(path.join(outDir, 'door.json'), 'utf8'));
  t.equal(definition.id, 'door');
  t.same(Object.keys(definition.states), ['closed', 'opened', 'broken']);
  t.same(definition.states.closed.transitions[0].target, ['#door.opened']);
  const config = JSON.parse(await readFile(path.join(outDir, 'door.config.json'), 'utf8'));
  t.equal(config.states.closed.on['door.open'].guard, 'unlocked', 'the authored config keeps named references');
  const index = JSON.parse(await readFile(path.join(outDir, 'index.json'), 'utf8'));
  t.match(index, [{ id: 'door', exportName: 'doorMachine', mermaid: 'door.mmd' }]);

  const mermaid = await readFile(path.join(outDir, 'door.mmd'), 'utf8');
  t.equal(mermaid, toMermaid(definition));
  t.equal(
    mermaid,
    [
      'stateDiagram-v2',
      '  direction LR',
      '  state opened {',
      '    state "swinging" as opened_swinging',
      '    state "still" as opened_still',
      '    [*] --> opened_swinging',
      '  }',
      '  [*] --> closed',
      '  broken --> [*]',
      '  closed --> opened : door.open [unlocked]',
      '  opened --> closed : door.close',
      '  opened --> broken : door.break',
      '  opened_swinging --> opened_still : after autoClose',
      '',
    ].join('\n'),
  );
});
