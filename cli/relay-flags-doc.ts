/**
 * docs/RELAY.md's flag table, generated from the table the relay command is built from
 * (RELAY_FLAGS), so the docs list every flag with its real default. `npm run docs:flags`
 * rewrites the marked block; specs/cli/relay-flags-doc.spec.ts fails when it is stale.
 */
import { RELAY_FLAGS, type RelayFlag } from './relay-options.ts';

export const FLAGS_BEGIN = '<!-- relay-flags:begin (generated from cli/relay-options.ts by `npm run docs:flags`; edit the table there) -->';
export const FLAGS_END = '<!-- relay-flags:end -->';

function defaultCell(row: RelayFlag): string {
  if (row.defaultText !== undefined) return row.defaultText;
  return row.default === undefined ? 'none' : `\`${row.default}\``;
}

/** One Markdown table row per flag: flag, variable, default, what it does and why. */
export function renderFlagTable(rows: readonly RelayFlag[] = RELAY_FLAGS): string {
  const lines = ['| flag | env | default | what it does, and why |', '|---|---|---|---|'];
  for (const row of rows) {
    const text = row.why ? `${row.description} — ${row.why}` : row.description;
    const cells = [`\`${row.flags}\``, `\`${row.env}\``, defaultCell(row), text].map((cell) => cell.replaceAll('|', '\\|'));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** `doc` with the text between the markers replaced by the generated table. Throws without markers. */
export function withFlagTable(doc: string, table: string = renderFlagTable()): string {
  const begin = doc.indexOf(FLAGS_BEGIN);
  const end = doc.indexOf(FLAGS_END);
  if (begin < 0 || end < begin) throw new Error(`the flag table markers are missing: ${FLAGS_BEGIN} … ${FLAGS_END}`);
  return `${doc.slice(0, begin + FLAGS_BEGIN.length)}\n${table}\n${doc.slice(end)}`;
}
