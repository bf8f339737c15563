import t from 'tap';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setup } from 'xstate';
import { exportMachines } from '../../cli/export-machines.ts';
import { DEFAULT_EXPORT_DIR, PROJECT_ROOT, describeMachines, exportFiles, toMermaid } from '../../observe/machine-export.ts';
import { MACHINES, machinesOf } from '../../machines/index.ts';

const MACHINES_DIR = path.join(PROJECT_ROOT, 'machines');

t.test('the committed docs/machines export is in step with the registry', async (t) => {
  const machines = describeMachines();
  t.equal(machines.length, MACHINES.length, 'one description per registered machine');
  const expected = exportFiles(machines);
  const committed = (await readdir(DEFAULT_EXPORT_DIR)).filter((f) => f.endsWith('.json') || f.endsWith('.mmd')).sort();
  t.same(committed, expected.map((f) => f.name).sort(), 'same files (run `npm run machines` after changing a machine)');
  for (const file of expected) {
    const onDisk = await readFile(path.join(DEFAULT_EXPORT_DIR, file.name), 'utf8').catch(() => '');
    t.equal(onDisk, file.content, `${file.name} is current (run \`npm run machines\`)`);
  }
});

t.test('every machine exported by a machines/*.machine.ts file is in the registry, under its own file', async (t) => {
  const files = (await readdir(MACHINES_DIR)).filter((f) => f.endsWith('.machine.ts')).sort();
  t.ok(files.length > 0, 'machine files found');
  t.same([...new Set(MACHINES.map((m) => m.file))].sort(), files, 'the registry names exactly the machine files there are');
  let found = 0;
  for (const file of files) {
    const mod = (await import(pathToFileURL(path.join(MACHINES_DIR, file)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      // A machine is what xstate's createMachine returns: an id, a config and toJSON.
      if (typeof value !== 'object' || value === null || !('config' in value) || typeof (value as { toJSON?: unknown }).toJSON !== 'function') continue;
      found++;
      const entry = MACHINES.find((m) => m.machine === value);
      t.ok(entry, `${name} from ${file} is registered in machines/index.ts`);
      t.equal(entry?.file, file, `${name} is registered under its own file`);
    }
  }
  t.equal(found, MACHINES.length, 'and the registry holds nothing that no file exports');
  t.equal(new Set(MACHINES.map((m) => m.machine.id)).size, MACHINES.length, 'machine ids are unique');
});

t.test('machinesOf picks the registered side, and duplicate ids are refused', async (t) => {
  const relay = machinesOf('relay').map((m) => m.machine.id);
  const client = machinesOf('client').map((m) => m.machine.id);
  t.same([...relay, ...client].sort(), MACHINES.map((m) => m.machine.id).sort(), 'every machine is on exactly one side');
  t.ok(relay.includes('relayConnection') && relay.includes('socketPair'), 'the relay runs its connections and pairs');
  t.ok(client.includes('client') && !relay.includes('client'), 'the client machine is client-side');
  const [first] = MACHINES;
  t.throws(() => describeMachines([first!, { ...first!, file: 'copy.machine.ts' }]), /two registered machines have the id/);
});

t.test('exports a registered machine as JSON definition, config and Mermaid, and drops stale files', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-machines-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const outDir = path.join(dir, 'out');
  await mkdir(outDir);
  await writeFile(path.join(outDir, 'gone.json'), '{}');
  await writeFile(path.join(outDir, 'README.md'), 'kept');
  const doorMachine = setup({ guards: { unlocked: () => true }, delays: { autoClose: 1000 } }).createMachine({
    id: 'door',
    initial: 'closed',
    states: {
      closed: { on: { 'door.open': { target: 'opened', guard: 'unlocked' } } },
      opened: { initial: 'swinging', states: { swinging: { after: { autoClose: 'still' } }, still: {} }, on: { 'door.close': 'closed', 'door.break': 'broken' } },
      broken: { type: 'final' },
    },
  });
  const written = await exportMachines({ registry: [{ machine: doorMachine, side: 'client', file: 'door.machine.ts' }], outDir });
  t.same(written.sort(), ['door.config.json', 'door.json', 'door.mmd', 'index.json']);
  t.same((await readdir(outDir)).sort(), ['README.md', 'door.config.json', 'door.json', 'door.mmd', 'index.json']);

  const definition = JSON.parse(await readFile(path.join(outDir, 'door.json'), 'utf8'));
  t.equal(definition.id, 'door');
  t.same(Object.keys(definition.states), ['closed', 'opened', 'broken']);
  t.same(definition.states.closed.transitions[0].target, ['#door.opened']);
  const config = JSON.parse(await readFile(path.join(outDir, 'door.config.json'), 'utf8'));
  t.equal(config.states.closed.on['door.open'].guard, 'unlocked', 'the authored config keeps named references');
  const index = JSON.parse(await readFile(path.join(outDir, 'index.json'), 'utf8'));
  t.same(index, [{ id: 'door', side: 'client', source: 'machines/door.machine.ts', definition: 'door.json', config: 'door.config.json', mermaid: 'door.mmd' }]);

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
