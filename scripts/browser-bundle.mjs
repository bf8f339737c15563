/**
 * The browser bundle of the client (`/alphanet.js` on the relay's WebSocket port, docs/CLIENT.md
 * "From a browser"): actors/client/browser.ts and what it imports, as one ES module. Used by
 * `npm run build` (dist/browser/alphanet.js) and, in a checkout, by the relay on first request.
 *
 * The build fails if anything in the graph imports a Node built-in (`node:net`, bare `stream`…)
 * or the `ws` package: esbuild's browser platform already refuses `node:` specifiers, and this
 * plugin refuses the rest by name, since `ws` has a browser stub that would bundle silently
 * and fail only at run time.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';

export const BROWSER_ENTRY = fileURLToPath(new URL('../actors/client/browser.ts', import.meta.url));
const FORBIDDEN = new Set([...builtinModules, 'ws']);

/** esbuild plugin: a Node-only import in the browser graph is a build error naming it. */
const nodeOnlyGuard = {
  name: 'alphanet-no-node-in-browser',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      const bare = args.path.startsWith('node:') ? args.path.slice(5) : args.path;
      if (!args.path.startsWith('node:') && !FORBIDDEN.has(bare) && !FORBIDDEN.has(bare.split('/')[0])) return undefined;
      return { errors: [{ text: `"${args.path}" is Node-only and must not be in the browser bundle (imported by ${args.importer})` }] };
    });
  },
};

/**
 * Builds the bundle; resolves with its bytes (and writes `outfile` when given). Rejects on any
 * build error, a Node-only import among them. `entry` is for specs (a graph with a bad import).
 */
export async function buildBrowserBundle({ outfile, minify = true, entry = BROWSER_ENTRY } = {}) {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [nodeOnlyGuard],
    write: outfile !== undefined,
    ...(outfile !== undefined ? { outfile } : { outdir: 'out' }),
  });
  if (outfile !== undefined) {
    const { readFile } = await import('node:fs/promises');
    return new Uint8Array(await readFile(outfile));
  }
  return result.outputFiles[0].contents;
}
