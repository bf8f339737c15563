/**
 * Machine definitions as data: every machine of the registry (machines/index.ts) with its JSON
 * definition (xstate's `machine.toJSON()`), its authored config (what the Stately visualizer
 * imports) and a Mermaid `stateDiagram-v2`. `npm run machines` writes these into docs/machines/,
 * the dashboard draws its diagrams from the same JSON, and a spec keeps the committed files in
 * step.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { MACHINES, type MachineRegistration, type MachineSide } from '../machines/index.ts';

/** A transition as it appears in xstate's JSON definition. */
export interface TransitionJSON {
  target?: string[];
  eventType: string;
  guard?: string | { type: string } | null;
  delay?: string | number;
  actions?: unknown[];
  source?: string;
}

/** A state node as it appears in xstate's JSON definition (`machine.toJSON()`). */
export interface StateNodeJSON {
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  initial?: { target: string[] };
  states: Record<string, StateNodeJSON>;
  transitions: TransitionJSON[];
  invoke?: { id: string; src: string | { type: string } }[];
  order?: number;
}

/** One registered machine as data: what the export writes and the dashboard draws. */
export interface MachineDescription {
  /** The machine's id (config `id`), unique across the project. */
  id: string;
  /** Who runs it (machines/index.ts). */
  side: MachineSide;
  /** The source file relative to the project root, with forward slashes. */
  source: string;
  /** `machine.toJSON()`: the normalised definition (targets resolved to ids). */
  definition: StateNodeJSON;
  /** The authored config, JSON-safe, as the Stately visualizer and inspector read it. */
  config: unknown;
}

/** The project root (two levels above this file). */
export const PROJECT_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Where `npm run machines` writes. */
export const DEFAULT_EXPORT_DIR = path.join(PROJECT_ROOT, 'docs', 'machines');
/** The folder the registry's `file` names are in, relative to the project root. */
const MACHINES_FOLDER = 'machines';

/**
 * Every machine of `registry` (default: the project's, machines/index.ts) as data, sorted by id
 * so the output is stable. Ids must be unique: they name the export's files and the page's
 * diagrams.
 */
export function describeMachines(registry: readonly MachineRegistration[] = MACHINES): MachineDescription[] {
  const seen = new Set<string>();
  const described = registry.map(({ machine, side, file }): MachineDescription => {
    if (seen.has(machine.id)) throw new Error(`two registered machines have the id ${JSON.stringify(machine.id)}`);
    seen.add(machine.id);
    return {
      id: machine.id,
      side,
      source: `${MACHINES_FOLDER}/${file}`,
      // A JSON round trip drops functions and undefined, as the inspector's serialiser does.
      definition: JSON.parse(JSON.stringify(machine.toJSON())) as StateNodeJSON,
      config: JSON.parse(JSON.stringify(machine.config, jsonSafeReplacer)) as unknown,
    };
  });
  return described.sort((a, b) => a.id.localeCompare(b.id));
}

/** Inline functions in an authored config become `{ type: name }`, as @statelyai/inspect does. */
function jsonSafeReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'function') return { type: value.name || 'anonymous' };
  return value;
}

/**
 * A short human label for a transition's event, hiding xstate's generated event names; `node` is
 * the transition's source, whose invocations name the actor a done/error event comes from.
 */
export function eventLabel(transition: TransitionJSON, node?: StateNodeJSON): string {
  const type = transition.eventType;
  const invokeSrc = (invokeId: string) => {
    const src = node?.invoke?.find((i) => i.id === invokeId)?.src;
    return src === undefined ? invokeId : typeof src === 'string' ? src : src.type;
  };
  let label: string;
  if (type === '') label = 'always';
  else if (type.startsWith('xstate.after.')) label = `after ${String(transition.delay ?? type.split('.')[2])}`;
  else if (type.startsWith('xstate.done.state.')) label = 'done';
  else if (type.startsWith('xstate.done.actor.')) label = `done: ${invokeSrc(type.slice('xstate.done.actor.'.length))}`;
  else if (type.startsWith('xstate.error.actor.')) label = `error: ${invokeSrc(type.slice('xstate.error.actor.'.length))}`;
  else label = type;
  const guard = transition.guard;
  if (guard) label += ` [${typeof guard === 'string' ? guard : guard.type}]`;
  return label;
}

/** Every state node of a definition, depth first, parents before children. */
export function* walkStates(node: StateNodeJSON): Generator<StateNodeJSON> {
  yield node;
  for (const child of Object.values(node.states)) yield* walkStates(child);
}

/** Mermaid ids must be plain words and unique across the whole diagram. */
function mermaidId(stateId: string, rootId: string): string {
  const rel = stateId === rootId ? 'root' : stateId.slice(rootId.length + 1);
  return rel.replace(/[^A-Za-z0-9_]/g, '_');
}

function mermaidLabel(text: string): string {
  // Colons end a Mermaid transition label and quotes end a description; neither can appear.
  return text.replace(/[:"]/g, ' ').replace(/\s+/g, ' ').trim();
}

/**
 * A Mermaid `stateDiagram-v2` of a machine definition: nested states, initial and final
 * markers, every targeted transition labelled with its event (and guard).
 */
export function toMermaid(definition: StateNodeJSON): string {
  const rootId = definition.id;
  const lines = ['stateDiagram-v2', '  direction LR'];
  const byId = new Map<string, StateNodeJSON>();
  for (const node of walkStates(definition)) byId.set(node.id, node);
  const ref = (id: string) => mermaidId(id, rootId);

  const emitChildren = (parent: StateNodeJSON, indent: string) => {
    const children = Object.values(parent.states);
    children.forEach((child, index) => {
      if (parent.type === 'parallel' && index > 0) lines.push(`${indent}--`);
      const id = ref(child.id);
      if (Object.keys(child.states).length > 0) {
        lines.push(`${indent}state ${id} {`);
        emitChildren(child, indent + '  ');
        lines.push(`${indent}}`);
      } else if (id !== child.key) {
        lines.push(`${indent}state "${mermaidLabel(child.key)}" as ${id}`);
      }
    });
    const initial = parent.initial?.target[0];
    if (parent.type !== 'parallel' && initial) lines.push(`${indent}[*] --> ${ref(initial.replace(/^#/, ''))}`);
    for (const child of children) {
      if (child.type === 'final') lines.push(`${indent}${ref(child.id)} --> [*]`);
    }
  };
  emitChildren(definition, '  ');

  for (const node of walkStates(definition)) {
    if (node.id === rootId) continue;
    for (const transition of node.transitions) {
      for (const target of transition.target ?? []) {
        const targetId = target.replace(/^#/, '');
        if (!byId.has(targetId)) continue;
        lines.push(`  ${ref(node.id)} --> ${ref(targetId)} : ${mermaidLabel(eventLabel(transition, node))}`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** One file of the export: path relative to the export folder, and its text. */
export interface ExportFile {
  name: string;
  content: string;
}

/**
 * The files `npm run machines` writes: per machine `<id>.json` (definition),
 * `<id>.config.json` (authored config, for the Stately visualizer) and `<id>.mmd` (Mermaid),
 * plus `index.json` listing them.
 */
export function exportFiles(machines: readonly MachineDescription[]): ExportFile[] {
  const files: ExportFile[] = [];
  const index = machines.map((m) => ({
    id: m.id,
    side: m.side,
    source: m.source,
    definition: `${m.id}.json`,
    config: `${m.id}.config.json`,
    mermaid: `${m.id}.mmd`,
  }));
  files.push({ name: 'index.json', content: JSON.stringify(index, null, 2) + '\n' });
  for (const m of machines) {
    files.push({ name: `${m.id}.json`, content: JSON.stringify(m.definition, null, 2) + '\n' });
    files.push({ name: `${m.id}.config.json`, content: JSON.stringify(m.config, null, 2) + '\n' });
    files.push({ name: `${m.id}.mmd`, content: toMermaid(m.definition) });
  }
  return files;
}

/** Files in an export folder that the exporter owns (and so may delete when stale). */
export function isExportArtifact(name: string): boolean {
  return name.endsWith('.json') || name.endsWith('.mmd');
}
