/**
 * `npm run machines`: writes every registered machine's definition (JSON), authored config and
 * Mermaid diagram into docs/machines/, removing files of machines that no longer exist, so the
 * folder can be read in a pull request or opened in the Stately visualizer (docs/OBSERVABILITY.md).
 * The machines are those of the registry, machines/index.ts.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_EXPORT_DIR, describeMachines, exportFiles, isExportArtifact } from '../observe/machine-export.ts';
import { MACHINES, type MachineRegistration } from '../machines/index.ts';

/** Options of {@link exportMachines}. */
export interface ExportMachinesOptions {
  /** The machines to export. @default MACHINES (machines/index.ts) */
  registry?: readonly MachineRegistration[];
  /** Folder to write into. @default docs/machines/ of the project */
  outDir?: string;
}

/** Writes the export and returns the names of the files written. */
export async function exportMachines(options: ExportMachinesOptions = {}): Promise<string[]> {
  const outDir = options.outDir ?? DEFAULT_EXPORT_DIR;
  const files = exportFiles(describeMachines(options.registry ?? MACHINES));
  await mkdir(outDir, { recursive: true });
  const keep = new Set(files.map((f) => f.name));
  for (const existing of await readdir(outDir)) {
    if (isExportArtifact(existing) && !keep.has(existing)) await rm(path.join(outDir, existing));
  }
  for (const file of files) await writeFile(path.join(outDir, file.name), file.content);
  return files.map((f) => f.name);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outDir = process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_EXPORT_DIR;
  const written = await exportMachines({ outDir });
  process.stdout.write(`wrote ${written.length} files to ${path.relative(process.cwd(), outDir) || '.'}\n`);
}
