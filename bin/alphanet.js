#!/usr/bin/env -S node --initial-old-space-size=64
// The `alphanet` command. In a checkout the TypeScript sources sit beside this file and tsx
// compiles them on the fly (Deno needs nothing), so there is no build step; the npm package ships
// no sources, only the JavaScript that `prepack` compiled into dist/, which plain Node runs.
// The shebang's node flag is the relay's (`npm start`, docs/BENCHMARKS.md): without it, the TCP
// read buffers a tunnel moves make V8 mark-compact every few MB (forward/expose spent 1.5-2.7
// CPU-s per GB instead of 0.8-1.1; bench test 9). `alphanet relay` started any other way re-runs
// itself with it (cli/node-flags.ts).
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
