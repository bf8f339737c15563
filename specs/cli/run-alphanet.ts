/** Runs `alphanet` as a real process to its end, for specs of commands that exit on their own. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));

/** How long a command may take; a hang is killed and fails the spec rather than stalling it. */
const RUN_TIMEOUT_MS = 20_000;

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `alphanet ARGS` (with `env` added to this process's environment) and resolves when it exits. */
export async function runAlphanet(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
