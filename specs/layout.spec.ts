/**
 * Imports point one way (docs/ARCHITECTURE.md): protocol → machines → storage → relay / client →
 * tunnel / observe → the app composition → cli. A room may import its own layer and the layers
 * listed for it here, nothing above; a cycle between rooms, or a library file reaching into
 * cli/, bench/, fuzz/ or specs/, fails this spec with the file and the import that breaks it.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Each room, by the path prefix its files start with (first match wins, so more specific
 * prefixes come first), and the rooms it may import besides itself.
 */
const ROOMS: ReadonlyArray<{ room: string; prefix: string; may: readonly string[] }> = [
  { room: 'protocol', prefix: 'protocol/', may: [] },
  { room: 'machines', prefix: 'machines/', may: [] },
  { room: 'storage', prefix: 'storage/', may: ['protocol'] },
  // Shared by every room that logs or reports errors: pino's logger and a system error's wording.
  { room: 'support', prefix: 'actors/logger.ts', may: [] },
  { room: 'support', prefix: 'actors/describe-error.ts', may: [] },
  { room: 'relay', prefix: 'actors/relay/', may: ['protocol', 'machines', 'storage', 'support'] },
  { room: 'client', prefix: 'actors/client/', may: ['protocol', 'machines', 'support'] },
  { room: 'tunnel', prefix: 'tunnel/', may: ['protocol', 'client', 'support'] },
  { room: 'observe', prefix: 'observe/', may: ['protocol', 'machines', 'storage', 'support', 'relay', 'client'] },
  { room: 'app', prefix: 'index.ts', may: ['protocol', 'machines', 'storage', 'support', 'relay', 'client', 'tunnel', 'observe'] },
  { room: 'cli', prefix: 'cli/', may: ['protocol', 'machines', 'storage', 'support', 'relay', 'client', 'tunnel', 'observe', 'app'] },
];

/** Folders whose files are consumers, never imported by the rooms above. */
const CONSUMERS = ['bench/', 'fuzz/', 'specs/', 'scripts/', 'examples/'];

function roomOf(file: string): string | undefined {
  for (const { room, prefix } of ROOMS) if (file === prefix || file.startsWith(prefix)) return room;
  if (CONSUMERS.some((prefix) => file.startsWith(prefix))) return 'consumer';
  return undefined;
}

async function sourceFiles(dir = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = dir === '' ? entry.name : `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (['node_modules', 'dist', '.git', '.tap', 'coverage', 'data'].includes(entry.name)) continue;
      out.push(...(await sourceFiles(rel)));
    } else if (rel.endsWith('.ts') && !rel.endsWith('.d.ts')) {
      out.push(rel);
    }
  }
  return out;
}

/** Relative specifiers of static imports, re-exports and dynamic imports. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s+'(\.[^']+)'/g, /\bimport\s+'(\.[^']+)'/g, /\bimport\(\s*'(\.[^']+)'\s*\)/g];
  for (const pattern of patterns) for (const match of text.matchAll(pattern)) found.push(match[1]);
  return found;
}

t.test('every room imports only its own layer and the layers below it', async (t) => {
  const files = await sourceFiles();
  const violations: string[] = [];
  let checked = 0;
  for (const file of files) {
    const room = roomOf(file);
    if (room === undefined || room === 'consumer') continue;
    const allowed = new Set([room, ...ROOMS.filter((r) => r.room === room).flatMap((r) => r.may)]);
    const text = await readFile(path.join(ROOT, file), 'utf8');
    for (const specifier of importsOf(text)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      const targetRoom = roomOf(target);
      checked++;
      if (targetRoom === undefined) violations.push(`${file} imports ${specifier}, which is in no room`);
      else if (!allowed.has(targetRoom)) violations.push(`${file} (${room}) imports ${specifier} (${targetRoom})`);
    }
  }
  t.ok(checked > 100, `imports were found to check (${checked})`);
  t.same(violations, [], 'imports that break the one-way order');
});

t.test('the order itself has no cycle', async (t) => {
  const edges = new Map<string, Set<string>>();
  for (const { room, may } of ROOMS) {
    const set = edges.get(room) ?? new Set<string>();
    for (const other of may) set.add(other);
    edges.set(room, set);
  }
  const visiting = new Set<string>();
  const done = new Set<string>();
  const cycles: string[] = [];
  const visit = (room: string, trail: string[]): void => {
    if (done.has(room)) return;
    if (visiting.has(room)) {
      cycles.push([...trail, room].join(' → '));
      return;
    }
    visiting.add(room);
    for (const next of edges.get(room) ?? []) visit(next, [...trail, room]);
    visiting.delete(room);
    done.add(room);
  };
  for (const room of edges.keys()) visit(room, []);
  t.same(cycles, []);
});

t.test('the checker catches an import that points the wrong way', async (t) => {
  // Guards the guard: a relay file importing the client, and a client file importing the relay.
  t.equal(roomOf('actors/relay/server.ts'), 'relay');
  t.equal(roomOf('actors/client/session.ts'), 'client');
  const relayMay = new Set(ROOMS.filter((r) => r.room === 'client').flatMap((r) => r.may));
  t.notOk(relayMay.has('relay'), 'the client may not import the relay');
  t.same(importsOf("import { x } from '../relay/frame-reader.ts';\nexport * from './a.ts';\nawait import('./b.ts');"), [
    '../relay/frame-reader.ts',
    './a.ts',
    './b.ts',
  ]);
});
