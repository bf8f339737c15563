/**
 * Draws a machine definition as an SVG state diagram with a small layered layout of our own:
 * inside each compound state, children are placed in columns by their distance from the initial
 * child along sibling transitions, so the happy path reads left to right. It runs on the relay
 * (no browser library, no CDN); the page highlights the current state by toggling a class on
 * `[data-state="<state id>"]`, so the SVG is drawn once per machine, not once per update.
 */
import { eventLabel, walkStates, type StateNodeJSON, type TransitionJSON } from './machine-export.ts';

const FONT_PX = 12;
/** A rough average glyph width of the UI sans-serif at FONT_PX; exact metrics need a browser. */
const CHAR_PX = 7.3;
const LEAF_HEIGHT_PX = 32;
const LEAF_PAD_X_PX = 14;
const HEADER_PX = 24;
const PAD_PX = 14;
const ROW_GAP_PX = 18;
const MIN_COL_GAP_PX = 56;
const MAX_COL_GAP_PX = 210;
const LABEL_PAD_PX = 4;

interface Box {
  node: StateNodeJSON;
  x: number;
  y: number;
  w: number;
  h: number;
  children: Box[];
}

function textWidth(text: string): number {
  return text.length * CHAR_PX;
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The child of `parent` that is or contains the state with id `stateId`. */
function childContaining(parent: StateNodeJSON, stateId: string): StateNodeJSON | undefined {
  for (const child of Object.values(parent.states)) {
    if (stateId === child.id || stateId.startsWith(child.id + '.')) return child;
  }
  return undefined;
}

/** Columns of the children of a compound state: breadth-first distance from the initial child. */
function rankChildren(parent: StateNodeJSON): StateNodeJSON[][] {
  const children = Object.values(parent.states);
  if (parent.type === 'parallel') return children.map((c) => [c]);
  const edges = new Map<string, Set<string>>();
  for (const child of children) {
    const out = new Set<string>();
    for (const node of walkStates(child)) {
      for (const t of node.transitions) {
        for (const target of t.target ?? []) {
          const to = childContaining(parent, target.replace(/^#/, ''));
          if (to && to.id !== child.id) out.add(to.id);
        }
      }
    }
    edges.set(child.id, out);
  }
  const rank = new Map<string, number>();
  const initialTarget = parent.initial?.target[0]?.replace(/^#/, '');
  const start = (initialTarget && childContaining(parent, initialTarget)) || children[0];
  const queue: StateNodeJSON[] = start ? [start] : [];
  if (start) rank.set(start.id, 0);
  while (queue.length > 0) {
    const current = queue.shift() as StateNodeJSON;
    for (const next of edges.get(current.id) ?? []) {
      if (rank.has(next)) continue;
      rank.set(next, (rank.get(current.id) ?? 0) + 1);
      queue.push(parent.states[next.slice(parent.id.length + 1)] as StateNodeJSON);
    }
  }
  // States unreachable from the initial one still get drawn, after the others.
  let extra = Math.max(-1, ...rank.values()) + 1;
  for (const child of children) if (!rank.has(child.id)) rank.set(child.id, extra++);
  const columns: StateNodeJSON[][] = [];
  for (const child of children) {
    const r = rank.get(child.id) as number;
    (columns[r] ??= []).push(child);
  }
  return columns.filter((c) => c !== undefined);
}

/** The widest transition label leaving any state inside `parent`; it sets the column gap. */
function widestLabel(parent: StateNodeJSON): number {
  let widest = 0;
  for (const node of walkStates(parent)) {
    if (node === parent) continue;
    for (const t of node.transitions) if (t.target?.length) widest = Math.max(widest, textWidth(eventLabel(t, node)));
  }
  return widest;
}

function layout(node: StateNodeJSON, isRoot: boolean): Box {
  const children = Object.values(node.states);
  if (children.length === 0) {
    return { node, x: 0, y: 0, w: Math.max(64, textWidth(node.key) + 2 * LEAF_PAD_X_PX), h: LEAF_HEIGHT_PX, children: [] };
  }
  const columns = rankChildren(node);
  const colGap = Math.min(MAX_COL_GAP_PX, Math.max(MIN_COL_GAP_PX, widestLabel(node) * 0.75 + 24));
  const top = isRoot ? PAD_PX : HEADER_PX + PAD_PX / 2;
  const boxes: Box[] = [];
  let x = PAD_PX + (node.type === 'parallel' ? 0 : 18);
  let maxBottom = top;
  for (const column of columns) {
    const laid = column.map((c) => layout(c, false));
    const colWidth = Math.max(...laid.map((b) => b.w));
    let y = top;
    for (const b of laid) {
      b.x = x + (colWidth - b.w) / 2;
      b.y = y;
      y += b.h + ROW_GAP_PX;
      boxes.push(b);
    }
    maxBottom = Math.max(maxBottom, y - ROW_GAP_PX);
    x += colWidth + colGap;
  }
  const w = Math.max(x - colGap + PAD_PX, textWidth(node.key) + 2 * PAD_PX);
  // Room under the boxes for back edges, which loop below.
  const h = maxBottom + PAD_PX + 22;
  return { node, x: 0, y: 0, w, h, children: boxes };
}

/** Converts child coordinates (relative to their parent) into absolute ones. */
function absolutise(box: Box, dx: number, dy: number, out: Map<string, Box>): void {
  box.x += dx;
  box.y += dy;
  out.set(box.node.id, box);
  for (const child of box.children) absolutise(child, box.x, box.y, out);
}

/** Options of {@link renderStateDiagramSvg}. */
export interface StateDiagramOptions {
  /** Show the root state's own frame and name. @default false */
  showRoot?: boolean;
}

/**
 * An SVG document of the machine. Every state is a `<g class="state" data-state="<id>">`, every
 * transition a `<g class="edge" data-source data-target data-event>`; styling uses CSS custom
 * properties (`--sd-*`) with fallbacks, so it themes with the page and also stands alone.
 */
export function renderStateDiagramSvg(definition: StateNodeJSON, options: StateDiagramOptions = {}): string {
  const root = layout(definition, !options.showRoot);
  const boxes = new Map<string, Box>();
  absolutise(root, 0, 0, boxes);
  const parts: string[] = [];
  const labels: string[] = [];

  const drawState = (box: Box, isRoot: boolean) => {
    const { node } = box;
    if (!isRoot || options.showRoot) {
      const leaf = box.children.length === 0;
      const cls = ['state', leaf ? 'leaf' : 'compound', node.type === 'final' ? 'final' : ''].filter(Boolean).join(' ');
      parts.push(`<g class="${cls}" data-state="${escapeXml(node.id)}">`);
      parts.push(`<title>${escapeXml(node.id)}</title>`);
      parts.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" rx="${leaf ? 9 : 12}"/>`);
      if (node.type === 'final') {
        parts.push(`<rect class="inner" x="${box.x + 3}" y="${box.y + 3}" width="${box.w - 6}" height="${box.h - 6}" rx="7"/>`);
      }
      const ty = leaf ? box.y + box.h / 2 + FONT_PX / 2 - 2 : box.y + 17;
      const tx = leaf ? box.x + box.w / 2 : box.x + 12;
      parts.push(`<text x="${tx}" y="${ty}"${leaf ? ' text-anchor="middle"' : ''}>${escapeXml(node.key)}</text>`);
      parts.push('</g>');
    }
    // The initial marker: a dot with a short arrow into the initial child.
    const initialId = node.type === 'parallel' ? undefined : node.initial?.target[0]?.replace(/^#/, '');
    const initial = initialId ? boxes.get(initialId) : undefined;
    if (initial && box.children.includes(initial)) {
      const cy = initial.y + Math.min(initial.h, LEAF_HEIGHT_PX) / 2;
      parts.push(`<circle class="initial" cx="${initial.x - 17}" cy="${cy}" r="4"/>`);
      parts.push(`<path class="edge-line" d="M${initial.x - 13} ${cy} L${initial.x - 2} ${cy}" marker-end="url(#sd-arrow)"/>`);
    }
    for (const child of box.children) drawState(child, false);
  };
  drawState(root, true);

  const drawEdge = (from: Box, to: Box, t: TransitionJSON, node: StateNodeJSON) => {
    const label = eventLabel(t, node);
    let d: string;
    let lx: number;
    let ly: number;
    if (from === to) {
      const x = from.x + from.w - 14;
      const y = from.y;
      d = `M${x - 10} ${y} C${x - 10} ${y - 26} ${x + 22} ${y - 26} ${x + 8} ${y}`;
      lx = x + 6;
      ly = y - 24;
    } else if (to.x >= from.x + from.w - 1) {
      const sx = from.x + from.w;
      const sy = from.y + Math.min(from.h, LEAF_HEIGHT_PX) / 2;
      const ex = to.x;
      const ey = to.y + Math.min(to.h, LEAF_HEIGHT_PX) / 2;
      const c = Math.max(24, (ex - sx) / 2);
      d = `M${sx} ${sy} C${sx + c} ${sy} ${ex - c} ${ey} ${ex - 2} ${ey}`;
      lx = (sx + ex) / 2;
      ly = (sy + ey) / 2 - 5;
    } else if (to.x + to.w <= from.x + 1) {
      // A back edge leaves from the bottom and loops under the states between.
      const sx = from.x + from.w / 2;
      const sy = from.y + from.h;
      const ex = to.x + to.w / 2;
      const ey = to.y + to.h;
      const dip = Math.max(sy, ey) + 26;
      d = `M${sx} ${sy} C${sx} ${dip} ${ex} ${dip} ${ex} ${ey + 2}`;
      lx = (sx + ex) / 2;
      ly = dip - 6;
    } else {
      // Same column: a bow on the right-hand side.
      const down = to.y > from.y;
      const sx = from.x + from.w;
      const sy = from.y + from.h / 2;
      const ex = to.x + to.w;
      const ey = to.y + to.h / 2;
      const bow = Math.max(sx, ex) + 34;
      d = `M${sx} ${sy} C${bow} ${sy} ${bow} ${ey} ${ex + 2} ${ey}`;
      lx = bow - 6;
      ly = (sy + ey) / 2 + (down ? 0 : 0);
    }
    parts.push(
      `<g class="edge" data-source="${escapeXml(node.id)}" data-target="${escapeXml(to.node.id)}" data-event="${escapeXml(t.eventType)}">` +
        `<path class="edge-line" d="${d}" marker-end="url(#sd-arrow)"/></g>`,
    );
    const lw = textWidth(label) + 2 * LABEL_PAD_PX;
    labels.push(
      `<g class="edge-label"><rect x="${lx - lw / 2}" y="${ly - FONT_PX + 1}" width="${lw}" height="${FONT_PX + 4}" rx="4"/>` +
        `<text x="${lx}" y="${ly + 1}" text-anchor="middle">${escapeXml(label)}</text></g>`,
    );
  };
  for (const node of walkStates(definition)) {
    if (node.id === definition.id) continue;
    const from = boxes.get(node.id);
    if (!from) continue;
    for (const t of node.transitions) {
      for (const target of t.target ?? []) {
        const to = boxes.get(target.replace(/^#/, ''));
        if (to) drawEdge(from, to, t, node);
      }
    }
  }

  const style = `
.state rect{fill:var(--sd-node,#fff);stroke:var(--sd-stroke,#94a3b8);stroke-width:1.2}
.state.compound>rect{fill:var(--sd-group,rgba(148,163,184,.08));stroke-dasharray:0}
.state.final .inner{fill:none}
.state text{fill:var(--sd-text,#0f172a);font:500 ${FONT_PX}px var(--sd-font,system-ui,sans-serif)}
.state.compound>text{fill:var(--sd-muted,#64748b);font-weight:600}
.state.active>rect{fill:var(--sd-active,#6366f1);stroke:var(--sd-active-stroke,#4f46e5);stroke-width:2}
.state.compound.active>rect{fill:var(--sd-active-group,rgba(99,102,241,.12))}
.state.leaf.active text{fill:var(--sd-active-text,#fff)}
.edge-line{fill:none;stroke:var(--sd-edge,#94a3b8);stroke-width:1.2}
.initial{fill:var(--sd-edge,#94a3b8)}
.edge-label rect{fill:var(--sd-bg,#fff);opacity:.9}
.edge-label text{fill:var(--sd-muted,#64748b);font:${FONT_PX - 1}px var(--sd-font,system-ui,sans-serif)}
#sd-arrow path{fill:var(--sd-edge,#94a3b8)}`;
  const width = Math.ceil(root.w + 30);
  const height = Math.ceil(root.h + 20);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="state-diagram" data-machine="${escapeXml(definition.id)}" ` +
    `viewBox="-10 -16 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(definition.id)} state diagram">` +
    `<style>${style}</style>` +
    `<defs><marker id="sd-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker></defs>` +
    parts.join('') +
    labels.join('') +
    '</svg>'
  );
}

/**
 * The ids of every state active in an xstate snapshot `value` (`'idle'`, `{ connected: 'open' }`,
 * parallel objects), parents included: what the page highlights.
 */
export function activeStateIds(machineId: string, value: unknown): string[] {
  const out: string[] = [];
  const visit = (prefix: string, v: unknown) => {
    if (typeof v === 'string') out.push(`${prefix}.${v}`);
    else if (v && typeof v === 'object') {
      for (const [key, sub] of Object.entries(v as Record<string, unknown>)) {
        out.push(`${prefix}.${key}`);
        visit(`${prefix}.${key}`, sub);
      }
    }
  };
  visit(machineId, value);
  return out;
}
