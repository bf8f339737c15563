#!/usr/bin/env node
// The `alphanet` command. In a checkout the TypeScript sources sit beside this file and tsx
// compiles them on the fly (Deno needs nothing), so there is no build step; the npm package ships
// no sources, only the JavaScript that `prepack` compiled into dist/, which plain Node runs.
import { existsSync } from 'node:fs';

const source = new URL('../cli/alphanet.ts', import.meta.url);
if (existsSync(source)) {
  // Deno runs TypeScript itself; Node needs tsx's loader first.
  if (!('Deno' in globalThis)) (await import('tsx/esm/api')).register();
  await import(source.href);
} else {
  await import('../dist/cli/alphanet.js');
}
