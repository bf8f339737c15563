/** Child processes for specs: output collected, every wait bounded and failing with what was seen. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** A finished command. */
export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running command. */
export interface Running {
  child: ChildProcess;
  /** Output so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves with the first match of `pattern` in stdout; rejects on exit or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Resolves when the process has exited and its output is read; rejects after `timeoutMs`. */
  exited(timeoutMs: number): Promise<Ran>;
}

/**
 * The environment of a child, without the spec process's coverage collection: for children that
 * run code from outside the checkout (an installed package) or under another runtime.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_V8_COVERAGE;
  return env;
}

/** Starts `command args`, stdin ignored, stdout and stderr collected. */
export function start(command: string, args: readonly string[], options: SpawnOptions = {}): Running {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const what = `${command} ${args.join(' ')}`;
  let spawnError: Error | undefined;
  // 'close', not 'exit': output may still be in the pipes when the process has exited.
  const closed = new Promise<Ran>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${error.message}` });
    });
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const bounded = <T>(promise: Promise<T>, timeoutMs: number, waiting: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: no ${waiting} within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)),
        timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };
  return {
    child,
    output: () => ({ stdout, stderr }),
    waitFor: (pattern, timeoutMs) =>
      bounded(
        new Promise<RegExpExecArray>((resolve, reject) => {
          const check = () => {
            const m = pattern.exec(stdout);
            if (m) resolve(m);
          };
          child.stdout?.on('data', check);
          check();
          void closed.then((r) =>
            reject(new Error(`${what}: exited (${r.code ?? r.signal}) before printing ${pattern}${spawnError ? `: ${spawnError.message}` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)),
          );
        }),
        timeoutMs,
        `output matching ${pattern}`,
      ),
    exited: (timeoutMs) => bounded(closed, timeoutMs, 'exit'),
  };
}

/** Runs `command args` to the end; rejects if it takes longer than `timeoutMs` (and kills it). */
export async function run(command: string, args: readonly string[], timeoutMs: number, options: SpawnOptions = {}): Promise<Ran> {
  const running = start(command, args, options);
  try {
    return await running.exited(timeoutMs);
  } finally {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
  }
}

/** The pids whose parent is `pid` (Linux /proc), for checking what a process started. */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** The command line of a process (Linux /proc), as its argv. */
export async function commandLine(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
}

/** Whether a process still exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * kill -9 of a process and of its children: `node cli/relay-main.ts` may re-run itself with the
 * shipped node flags (cli/node-flags.ts), and a parent killed alone lets that child shut down
 * gracefully, which is no crash.
 */
export async function killHard(child: { pid?: number }): Promise<void> {
  const pid = child.pid!;
  for (const grandchild of await childPids(pid).catch(() => [])) process.kill(grandchild, 'SIGKILL');
  process.kill(pid, 'SIGKILL');
}
