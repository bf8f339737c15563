#!/usr/bin/env node
// The `alphanet` command. In a checkout the TypeScript sources sit beside this file and tsx
// compiles them on the fly (Deno needs nothing), so there is no build step; the npm package ships
// no sources, only the JavaScript that `prepack` compiled into dist/, which plain Node runs.
import { existsSync } from 'node:fs';

const fromSource = existsSync(new URL('../cli/alphanet.ts', import.meta.url));
// Deno runs TypeScript itself; Node needs tsx's loader first.
if (fromSource && !('Deno' in globalThis)) (await import('tsx/esm/api')).register();
const cli = (name) => new URL(fromSource ? `../cli/${name}.ts` : `../dist/cli/${name}.js`, import.meta.url).href;

// `relay` re-runs itself with its Node flags (cli/node-flags.ts). Checked here, before the rest
// of the CLI loads, so the process that only waits for the relay stays small.
if (process.argv[2] === 'relay') {
  const { ensureNodeFlags, RELAY_NODE_FLAGS } = await import(cli('node-flags'));
  await ensureNodeFlags(RELAY_NODE_FLAGS);
}
await import(cli('alphanet'));
