/**
 * Draws a machine definition as an SVG state diagram laid out by ELK (state-diagram-layout.ts).
 * It runs on the relay (no browser library, no CDN); the page highlights the current state by
 * toggling a class on `[data-state="<state id>"]`, so the SVG is drawn once per machine, not once
 * per update. Labels are drawn after every state and edge, so nothing covers them.
 */
import { LABEL_FONT_PX, STATE_FONT_PX, layoutStateDiagram, type PlacedEdge } from './state-diagram-layout.ts';
import type { StateNodeJSON } from './machine-export.ts';

/** Margin around the drawing, so strokes and markers at its edges are not cut. */
const MARGIN_PX = 8;

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const round = (n: number) => Math.round(n * 10) / 10;

function pathOf(edge: PlacedEdge): string {
  return edge.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${round(p.x)} ${round(p.y)}`).join(' ');
}

/** Options of {@link renderStateDiagramSvg}. */
export interface StateDiagramOptions {
  /** Kept for callers of the hand-made layout; ELK draws the root as the canvas. @default false */
  showRoot?: boolean;
}

/**
 * An SVG document of the machine. Every state is a `<g class="state" data-state="<id>">`, every
 * transition a `<g class="edge" data-source data-target data-event>` and its label a
 * `<g class="edge-label">`; styling uses CSS custom properties (`--sd-*`) with fallbacks, so it
 * themes with the page and also stands alone.
 */
export async function renderStateDiagramSvg(definition: StateNodeJSON, _options: StateDiagramOptions = {}): Promise<string> {
  const layout = await layoutStateDiagram(definition);
  const parts: string[] = [];
  // Parents before children, so nested states are drawn on top of their parent's frame.
  for (const box of [...layout.states].sort((a, b) => a.depth - b.depth)) {
    const { node } = box;
    const cls = ['state', box.leaf ? 'leaf' : 'compound', node.type === 'final' ? 'final' : ''].filter(Boolean).join(' ');
    parts.push(`<g class="${cls}" data-state="${escapeXml(node.id)}">`);
    parts.push(`<title>${escapeXml(node.id)}</title>`);
    parts.push(`<rect x="${round(box.x)}" y="${round(box.y)}" width="${round(box.w)}" height="${round(box.h)}" rx="${box.leaf ? 9 : 12}"/>`);
    if (node.type === 'final') {
      parts.push(`<rect class="inner" x="${round(box.x + 3)}" y="${round(box.y + 3)}" width="${round(box.w - 6)}" height="${round(box.h - 6)}" rx="7"/>`);
    }
    const ty = box.leaf ? box.y + box.h / 2 + STATE_FONT_PX / 2 - 2 : box.y + 18;
    const tx = box.leaf ? box.x + box.w / 2 : box.x + 12;
    parts.push(`<text x="${round(tx)}" y="${round(ty)}"${box.leaf ? ' text-anchor="middle"' : ''}>${escapeXml(node.key)}</text>`);
    parts.push('</g>');
  }
  for (const dot of layout.initials) parts.push(`<circle class="initial" cx="${round(dot.x)}" cy="${round(dot.y)}" r="${dot.r}"/>`);
  const labels: string[] = [];
  for (const edge of layout.edges) {
    if (edge.points.length < 2) continue;
    parts.push(
      `<g class="edge${edge.initial ? ' initial-edge' : ''}" data-source="${escapeXml(edge.source)}" data-target="${escapeXml(edge.target)}" data-event="${escapeXml(edge.eventType)}">` +
        `<path class="edge-line" d="${pathOf(edge)}" marker-end="url(#sd-arrow)"/></g>`,
    );
    const l = edge.label;
    if (l) {
      labels.push(
        `<g class="edge-label"><rect x="${round(l.x)}" y="${round(l.y)}" width="${round(l.w)}" height="${round(l.h)}" rx="4"/>` +
          `<text x="${round(l.x + l.w / 2)}" y="${round(l.y + l.h / 2 + LABEL_FONT_PX / 2 - 2)}" text-anchor="middle">${escapeXml(l.text)}</text></g>`,
      );
    }
  }

  const style = `
.state rect{fill:var(--sd-node,#fff);stroke:var(--sd-stroke,#94a3b8);stroke-width:1.2}
.state.compound>rect{fill:var(--sd-group,rgba(148,163,184,.08))}
.state.final .inner{fill:none}
.state text{fill:var(--sd-text,#0f172a);font:500 ${STATE_FONT_PX}px var(--sd-font,ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace)}
.state.compound>text{fill:var(--sd-muted,#64748b);font-weight:600}
.state.active>rect{fill:var(--sd-active,#6366f1);stroke:var(--sd-active-stroke,#4f46e5);stroke-width:2}
.state.compound.active>rect{fill:var(--sd-active-group,rgba(99,102,241,.12))}
.state.leaf.active text{fill:var(--sd-active-text,#fff)}
.edge-line{fill:none;stroke:var(--sd-edge,#94a3b8);stroke-width:1.2}
.initial{fill:var(--sd-edge,#94a3b8)}
.edge-label rect{fill:var(--sd-bg,#fff);opacity:.92}
.edge-label text{fill:var(--sd-muted,#64748b);font:${LABEL_FONT_PX}px var(--sd-font,ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace)}
#sd-arrow path{fill:var(--sd-edge,#94a3b8)}`;
  const width = layout.width + 2 * MARGIN_PX;
  const height = layout.height + 2 * MARGIN_PX;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="state-diagram" data-machine="${escapeXml(definition.id)}" ` +
    `viewBox="${-MARGIN_PX} ${-MARGIN_PX} ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(definition.id)} state diagram">` +
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
