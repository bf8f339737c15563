/**
 * Lays a machine definition out with ELK (elkjs: the Eclipse Layout Kernel, compiled to
 * JavaScript). ELK's layered algorithm handles what a hand-made layout got wrong: nested states
 * with edges across levels (`hierarchyHandling: INCLUDE_CHILDREN`), edge labels as boxes it keeps
 * apart from each other and from the states, self-loops, and parallel edges between one pair of
 * states (six `requested → closed` labels used to be drawn on top of each other). It runs on the
 * relay, once per machine, so the page needs no layout code and no CDN.
 *
 * Text is measured as monospace: the diagrams are drawn in a monospace font, whose glyphs all
 * advance ~0.6 em in every common face (DejaVu Sans Mono, Menlo, Consolas, SF Mono), so a width
 * computed here is the width the browser draws, whatever font it picks.
 */
import elkBundle from 'elkjs/lib/elk.bundled.js';
import type { ELK as ElkLayouter, ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import { eventLabel, type StateNodeJSON } from './machine-export.ts';

export const STATE_FONT_PX = 12;
export const LABEL_FONT_PX = 11;
/** Advance of one monospace glyph in em, with a margin over the usual 0.6. */
const MONO_EM = 0.62;
const LEAF_HEIGHT_PX = 32;
const LEAF_PAD_X_PX = 14;
const MIN_LEAF_WIDTH_PX = 56;
/** Room above a compound state's children for its name. */
const HEADER_PX = 26;
const PAD_PX = 14;
const LABEL_PAD_X_PX = 5;
const LABEL_HEIGHT_PX = LABEL_FONT_PX + 6;
const INITIAL_DOT_PX = 10;

/** Width of `text` drawn in the monospace font at `px`. */
export function textWidth(text: string, px: number): number {
  return Math.ceil([...text].length * px * MONO_EM);
}

/** A state placed in absolute coordinates. */
export interface PlacedState {
  node: StateNodeJSON;
  x: number;
  y: number;
  w: number;
  h: number;
  leaf: boolean;
  depth: number;
}

/** A transition (or an initial arrow) as a polyline, with its label box when it has one. */
export interface PlacedEdge {
  source: string;
  target: string;
  eventType: string;
  points: { x: number; y: number }[];
  label?: { text: string; x: number; y: number; w: number; h: number };
  initial: boolean;
}

/** The laid-out diagram, in absolute coordinates from (0, 0). */
export interface DiagramLayout {
  width: number;
  height: number;
  states: PlacedState[];
  /** The initial pseudo-state dots. */
  initials: { x: number; y: number; r: number }[];
  edges: PlacedEdge[];
}

// The bundle is CommonJS (`module.exports = ELK`); its typings describe an ES default export.
type ElkClass = new () => ElkLayouter;
const ELK = ((elkBundle as unknown as { default?: ElkClass }).default ?? elkBundle) as unknown as ElkClass;

const initialId = (node: StateNodeJSON) => `${node.id}#initial`;

function elkNode(node: StateNodeJSON, edges: ElkExtendedEdge[], meta: Map<string, { eventType: string; source: string; target: string; initial: boolean }>): ElkNode {
  const children = Object.values(node.states);
  if (children.length === 0) {
    return { id: node.id, width: Math.max(MIN_LEAF_WIDTH_PX, textWidth(node.key, STATE_FONT_PX) + 2 * LEAF_PAD_X_PX), height: LEAF_HEIGHT_PX };
  }
  const out: ElkNode = {
    id: node.id,
    children: children.map((c) => elkNode(c, edges, meta)),
    layoutOptions: {
      'elk.padding': `[top=${HEADER_PX + PAD_PX / 2},left=${PAD_PX},bottom=${PAD_PX},right=${PAD_PX}]`,
      // Wide enough for the state's own name in its header.
      'elk.nodeSize.constraints': 'MINIMUM_SIZE',
      'elk.nodeSize.minimum': `(${textWidth(node.key, STATE_FONT_PX) + 2 * PAD_PX + 12}, ${HEADER_PX + 2 * PAD_PX})`,
    },
  };
  const target = node.type === 'parallel' ? undefined : node.initial?.target[0]?.replace(/^#/, '');
  if (target) {
    out.children!.push({ id: initialId(node), width: INITIAL_DOT_PX, height: INITIAL_DOT_PX });
    const id = `e${edges.length}`;
    edges.push({ id, sources: [initialId(node)], targets: [target] });
    meta.set(id, { eventType: '', source: initialId(node), target, initial: true });
  }
  return out;
}

function collectTransitions(node: StateNodeJSON, known: Set<string>, edges: ElkExtendedEdge[], meta: Map<string, { eventType: string; source: string; target: string; initial: boolean; label?: string }>, isRoot: boolean): void {
  if (!isRoot) {
    for (const t of node.transitions) {
      for (const raw of t.target ?? []) {
        const target = raw.replace(/^#/, '');
        if (!known.has(target)) continue;
        const text = eventLabel(t, node);
        const id = `e${edges.length}`;
        edges.push({
          id,
          sources: [node.id],
          targets: [target],
          labels: [{ id: `${id}.label`, text, width: textWidth(text, LABEL_FONT_PX) + 2 * LABEL_PAD_X_PX, height: LABEL_HEIGHT_PX }],
        });
        meta.set(id, { eventType: t.eventType, source: node.id, target, initial: false, label: text });
      }
    }
  }
  for (const child of Object.values(node.states)) collectTransitions(child, known, edges, meta, false);
}

function allIds(node: StateNodeJSON, out = new Set<string>()): Set<string> {
  out.add(node.id);
  for (const child of Object.values(node.states)) allIds(child, out);
  return out;
}

/** Lays out `definition` (its root is the drawing, not a state in it). */
export async function layoutStateDiagram(definition: StateNodeJSON): Promise<DiagramLayout> {
  const edges: ElkExtendedEdge[] = [];
  const meta = new Map<string, { eventType: string; source: string; target: string; initial: boolean; label?: string }>();
  const root = elkNode(definition, edges, meta);
  collectTransitions(definition, allIds(definition), edges, meta, true);
  const graph: ElkNode = {
    id: '#root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.spacing.nodeNode': '22',
      'elk.spacing.edgeLabel': '3',
      'elk.spacing.edgeEdge': '10',
      'elk.spacing.edgeNode': '14',
      'elk.layered.spacing.nodeNodeBetweenLayers': '30',
      'elk.layered.spacing.edgeNodeBetweenLayers': '12',
      'elk.layered.spacing.edgeEdgeBetweenLayers': '8',
      'elk.padding': '[top=12,left=12,bottom=12,right=12]',
    },
    children: root.children ?? [root],
    edges,
  };
  const laid = await new ELK().layout(graph);

  const states: PlacedState[] = [];
  const initials: DiagramLayout['initials'] = [];
  const offsets = new Map<string, { x: number; y: number }>([['#root', { x: 0, y: 0 }]]);
  const byId = new Map<string, StateNodeJSON>();
  const index = (n: StateNodeJSON) => {
    byId.set(n.id, n);
    for (const c of Object.values(n.states)) index(c);
  };
  index(definition);
  const place = (n: ElkNode, dx: number, dy: number, depth: number) => {
    const x = dx + (n.x ?? 0);
    const y = dy + (n.y ?? 0);
    offsets.set(n.id, { x, y });
    if (n.id.endsWith('#initial')) {
      initials.push({ x: x + (n.width ?? 0) / 2, y: y + (n.height ?? 0) / 2, r: INITIAL_DOT_PX / 2 - 1 });
      return;
    }
    const node = byId.get(n.id);
    if (node) states.push({ node, x, y, w: n.width ?? 0, h: n.height ?? 0, leaf: !n.children?.length, depth });
    for (const c of n.children ?? []) place(c, x, y, depth + 1);
  };
  for (const c of laid.children ?? []) place(c, 0, 0, 0);

  const placedEdges: PlacedEdge[] = [];
  for (const e of laid.edges ?? []) {
    const m = meta.get(e.id);
    if (!m) continue;
    // ELK gives an edge's coordinates relative to the node that contains it.
    const container = (e as { container?: string }).container;
    const off = (container && offsets.get(container)) || { x: 0, y: 0 };
    const points: { x: number; y: number }[] = [];
    for (const s of e.sections ?? []) {
      points.push({ x: off.x + s.startPoint.x, y: off.y + s.startPoint.y });
      for (const b of s.bendPoints ?? []) points.push({ x: off.x + b.x, y: off.y + b.y });
      points.push({ x: off.x + s.endPoint.x, y: off.y + s.endPoint.y });
    }
    const l = e.labels?.[0];
    placedEdges.push({
      source: m.source,
      target: m.target,
      eventType: m.eventType,
      points,
      initial: m.initial,
      label: l && m.label !== undefined ? { text: m.label, x: off.x + (l.x ?? 0), y: off.y + (l.y ?? 0), w: l.width ?? 0, h: l.height ?? 0 } : undefined,
    });
  }
  return { width: Math.ceil(laid.width ?? 0), height: Math.ceil(laid.height ?? 0), states, initials, edges: placedEdges };
}
