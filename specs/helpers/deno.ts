/** The Deno binary for specs that run code under Deno. */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The binary from the `deno` npm package (as its own bin finds it), else `deno` on PATH. */
export function findDeno(): { path?: string; why: string } {
  let why: string;
  try {
    const install = createRequire(`${ROOT}package.json`)('deno/install_api.cjs') as { runInstall(): string };
    return { path: install.runInstall(), why: 'npm package' };
  } catch (error) {
    why = `the deno npm package gave no binary (${(error as Error).message.split('\n')[0]})`;
  }
  const onPath = spawnSync('deno', ['--version'], { encoding: 'utf8' });
  if (onPath.status === 0) return { path: 'deno', why: 'PATH' };
  return { why: `${why}, and there is no deno on PATH: run npm ci` };
}
