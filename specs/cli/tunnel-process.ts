/**
 * A client command (`alphanet expose`, `forward`, …) as a real process against a spec's
 * in-process relay, which serves plain TCP (startRelay's default without a certificate), so the
 * child runs with ALPHANET_PLAINTEXT. Killed at teardown if still running.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

export const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));

export interface Running {
  child: ChildProcessWithoutNullStreams;
  /** The first stdout line (the ready line); rejects if the process exits first. */
  ready: Promise<string>;
  stdout: () => string;
  stderr: () => string;
}

/** Spawns `alphanet ...args`. */
export function startCli(t: Test, args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ALPHANET_RELAY: '', ALPHANET_LOG_LEVEL: 'info', ALPHANET_PLAINTEXT: '1' },
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c;
      const newline = out.indexOf('\n');
      if (newline >= 0) resolve(out.slice(0, newline));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready: ${err}`)));
  });
  ready.catch(() => {});
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, ready, stdout: () => out, stderr: () => err };
}
