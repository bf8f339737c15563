#!/usr/bin/env node
// The `alphanet` command. In a checkout the TypeScript sources sit beside this file and tsx
// compiles them on the fly, so there is no build step; the npm package ships no sources, only
// the JavaScript that `prepack` compiled into dist/, which plain Node runs (tsx is not installed).
import { existsSync } from 'node:fs';

const source = new URL('../cli/alphanet.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import('../dist/cli/alphanet.js');
}
