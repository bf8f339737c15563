#!/usr/bin/env -S node --initial-old-space-size=64
// Runs the TypeScript CLI straight from a checkout: tsx compiles on the fly, so no build step.
// The node flag is the relay's (`npm start`, docs/BENCHMARKS.md): without it, the TCP read
// buffers a tunnel moves make V8 mark-compact every few MB (forward/expose spent 1.5-2.7 CPU-s
// per GB instead of 0.8-1.1; bench test 9).
import { register } from 'tsx/esm/api';

register();
await import('../cli/alphanet.ts');
