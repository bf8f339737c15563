/**
 * What the WebSocket port serves over plain HTTP (docs/RELAY.md "WebSocket"): the client's
 * browser bundle at BROWSER_BUNDLE_PATH and the example page of examples/browser/. The bundle is
 * dist/browser/alphanet.js in an installed package (`npm run build` makes it); in a checkout it
 * is built from the sources with esbuild on first request (scripts/browser-bundle.mjs). Either
 * way it is read once and served from memory. The relay imports none of the client's code.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** Where the bundle is served. */
export const BROWSER_BUNDLE_PATH = '/alphanet.js';
/** The prebuilt bundle: dist/actors/relay/ → dist/browser/ (absent in a checkout). */
const PREBUILT_BUNDLE = fileURLToPath(new URL('../../browser/alphanet.js', import.meta.url));
/** The build script, present in a checkout only. */
const BUNDLE_SCRIPT = new URL('../../scripts/browser-bundle.mjs', import.meta.url).href;
/** The example page's files: examples/browser/ beside the sources, or dist/examples/browser/. */
const EXAMPLE_DIR = new URL('../../examples/browser/', import.meta.url);

const JS = 'text/javascript; charset=utf-8';
/** Paths served besides the bundle, and the example file each is. */
const EXAMPLE_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/example.js': { file: 'example.js', type: JS },
};

/** One file to serve: its bytes and content type. */
export interface ServedFile {
  body: Uint8Array;
  type: string;
}

/** Reads or builds each file once; a failure is not cached, so the next request tries again. */
export class BrowserFiles {
  readonly #cache = new Map<string, Promise<ServedFile>>();

  /** The file at `path`, undefined for a path it does not serve. Rejects if it cannot be had. */
  get(path: string): Promise<ServedFile> | undefined {
    const load = path === BROWSER_BUNDLE_PATH ? () => loadBundle() : EXAMPLE_FILES[path] && (() => loadExample(EXAMPLE_FILES[path]));
    if (!load) return undefined;
    let file = this.#cache.get(path);
    if (file === undefined) {
      file = load();
      this.#cache.set(path, file);
      file.catch(() => this.#cache.delete(path));
    }
    return file;
  }
}

async function loadBundle(): Promise<ServedFile> {
  try {
    return { body: await readFile(PREBUILT_BUNDLE), type: JS };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const script = (await import(BUNDLE_SCRIPT)) as { buildBrowserBundle(): Promise<Uint8Array> };
  return { body: await script.buildBrowserBundle(), type: JS };
}

async function loadExample(entry: { file: string; type: string }): Promise<ServedFile> {
  return { body: await readFile(new URL(entry.file, EXAMPLE_DIR)), type: entry.type };
}
