/**
 * Runs a server under test (the relay, or a baseline) in its own process, as issue 6 asks, so
 * its CPU and memory are its own and can be read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { AlphanetError } from '../../protocol/errors.ts';

/** How long a child may take to print its `listening on` line. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;
/** How long a child may take to exit after SIGTERM before it is killed. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
/** File descriptors the children may open: the 10,000-client test needs one per client. */
export const CHILD_FD_LIMIT = 19_000;
/** Lines of a child's stderr kept for the error message when it fails. */
const STDERR_LINES_KEPT = 40;

/** A benchmark child failed to start or died. */
export class BenchChildError extends AlphanetError {
  constructor(message: string) {
    super('ERR_BENCH_CHILD', message);
  }
}

export interface ChildOptions {
  /** Shown in errors. */
  name: string;
  /** Script path and its arguments, run as `node --import tsx <args>`. */
  args: string[];
  /** Extra node flags (e.g. --cpu-prof). @default [] */
  nodeFlags?: string[];
  /** @default DEFAULT_START_TIMEOUT_MS */
  startTimeoutMs?: number;
  /** Working directory. @default process.cwd() */
  cwd?: string;
  /** Extra environment. @default {} */
  env?: Record<string, string>;
  /**
   * A program to run instead of node (e.g. socat), argv[0] first; `args` and `nodeFlags` are then
   * ignored. @default node with `nodeFlags --import tsx args`
   */
  command?: string[];
  /**
   * The line (stdout or stderr) that says the child is ready, with the host and port it serves
   * as groups 1 and 2. @default /listening on (\S+):(\d+)/
   */
  ready?: RegExp;
  /** Count the CPU of live child processes too (socat forks one per connection). @default false */
  countChildren?: boolean;
}

/** What a server prints once it listens. */
const LISTENING_LINE = /listening on (\S+):(\d+)/;

/** A running server process and the address it listens on. */
export class ServerChild {
  readonly host: string;
  readonly port: number;
  /** The bash wrapper. */
  readonly #child: ChildProcess;
  /** The server itself, whose /proc entries are read. */
  readonly #serverPid: number;
  readonly #name: string;
  readonly #stderr: string[];
  readonly #countChildren: boolean;
  #exited = false;

  private constructor(child: ChildProcess, serverPid: number, name: string, host: string, port: number, stderr: string[], countChildren: boolean) {
    this.#child = child;
    this.#countChildren = countChildren;
    this.#serverPid = serverPid;
    this.#name = name;
    this.host = host;
    this.port = port;
    this.#stderr = stderr;
    child.once('exit', () => {
      this.#exited = true;
    });
  }

  /**
   * Spawns the child through bash so its open-file limit can be raised (`ulimit -n`), and waits
   * for the line `listening on H:P` on its stdout.
   */
  static async start(options: ChildOptions): Promise<ServerChild> {
    const nodeArgs = [...(options.nodeFlags ?? []), '--import', 'tsx', ...options.args];
    const quoted = (options.command ?? [process.execPath, ...nodeArgs]).map(shellQuote).join(' ');
    const ready = options.ready ?? LISTENING_LINE;
    // bash raises the fd limit, starts the server, tells us its pid, and kills it when our end of
    // its stdin closes: a bench that dies (crash, timeout, SIGKILL) never leaves a server behind.
    const script = [
      `ulimit -n ${CHILD_FD_LIMIT} 2>/dev/null`,
      // Background jobs get /dev/null as stdin; fd 3 keeps the pipe from us for the watcher.
      'exec 3<&0',
      `${quoted} </dev/null 3<&- &`,
      'server=$!',
      'echo "bench-child-pid $server"',
      '{ cat >/dev/null <&3; kill $server 2>/dev/null; } &',
      'wait $server',
    ].join('\n');
    const child = spawn('bash', ['-c', script], {
      cwd: options.cwd ?? process.cwd(),
      env: { ...process.env, ALPHANET_LOG_LEVEL: 'warn', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stderr: string[] = [];
    const stderrLines = createInterface({ input: child.stderr! });
    stderrLines.on('line', (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
    });
    const lines = createInterface({ input: child.stdout! });
    const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const readiness = new Readiness(ready);
    const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => {
        signal(readiness.pid, 'SIGKILL');
        child.stdin?.destroy();
        child.kill('SIGKILL');
        reject(new BenchChildError(`${options.name} did not print "listening on" within ${timeoutMs} ms\n${stderr.join('\n')}`));
      }, timeoutMs);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        child.stdin?.destroy();
        reject(new BenchChildError(`${options.name} exited (${code}) before listening\n${stderr.join('\n')}`));
      };
      child.once('exit', onExit);
      let done = false;
      const onLine = (line: string): void => {
        const listening = readiness.feed(line);
        if (listening === undefined || done) return;
        done = true;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(listening);
      };
      lines.on('line', onLine);
      // socat says where it listens on stderr.
      stderrLines.on('line', onLine);
    });
    // Keep draining stdout so the child never blocks on a full pipe; with --child-stdout
    // (BENCH_CHILD_STDOUT_DIR) its lines, e.g. --trace-gc's, go to a file.
    const dir = process.env.BENCH_CHILD_STDOUT_DIR;
    if (dir) {
      const out = createWriteStream(path.join(dir, `${options.name.replaceAll(/\W+/g, '-')}-${readiness.pid}.log`));
      lines.on('line', (line) => out.write(`${line}\n`));
      lines.once('close', () => out.end());
    } else lines.on('line', () => {});
    return new ServerChild(child, readiness.pid, options.name, address.host, address.port, stderr, options.countChildren ?? false);
  }

  /** Process id of the server (not of the bash wrapper around it). */
  get pid(): number {
    return this.#serverPid;
  }

  /** The child's resident set size in bytes, from /proc (Linux). */
  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    if (m === null) throw new BenchChildError(`${this.#name}: no VmRSS in /proc/${this.pid}/status`);
    return Number(m[1]) * 1024;
  }

  /**
   * CPU time (user + system) the child has used so far, in seconds, from /proc (Linux), with
   * that of its children which have exited (socat forks one per connection).
   */
  async cpuSeconds(): Promise<number> {
    const fields = await statFields(this.pid);
    if (fields === undefined) throw new BenchChildError(`${this.#name}: /proc/${this.pid}/stat is gone`);
    // utime, stime, cutime, cstime are fields 14-17 of stat (11-14 after the command name).
    let ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    if (this.#countChildren) {
      for (const entry of await readdir('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const child = await statFields(Number(entry));
        if (child !== undefined && Number(child[1]) === this.pid) ticks += Number(child[11]) + Number(child[12]);
      }
    }
    return ticks / TICKS_PER_SECOND;
  }

  /** The last lines the child wrote to stderr. */
  stderrTail(): string {
    return this.#stderr.join('\n');
  }

  /** SIGTERM, then SIGKILL if it does not exit in time. Resolves once it has exited. */
  async stop(timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    if (this.#exited || this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = once(this.#child, 'exit');
    // The wrapper exits when the server does.
    signal(this.#serverPid, 'SIGTERM');
    const timer = setTimeout(() => {
      signal(this.#serverPid, 'SIGKILL');
      this.#child.kill('SIGKILL');
    }, timeoutMs);
    await exited;
    clearTimeout(timer);
    this.#child.stdin?.destroy();
  }
}

/**
 * Reads a starting child's lines (stdout and stderr, in whatever order they are read) until it
 * knows both the server's pid, from the wrapper's `bench-child-pid N` line, and where it listens.
 * socat says "listening" on stderr, which can be read before the pid line on stdout; without
 * the pid, stop() would signal pid 0, the whole process group (CI's runner with it).
 */
export class Readiness {
  /** The server's pid; 0 until the wrapper has said it. */
  pid = 0;
  #listening: { host: string; port: number } | undefined;

  constructor(private readonly ready: RegExp) {}

  /** Takes one line; returns the address once both it and the pid are known. */
  feed(line: string): { host: string; port: number } | undefined {
    const pid = /^bench-child-pid (\d+)$/.exec(line);
    if (pid !== null) this.pid = Number(pid[1]);
    const m = this.ready.exec(line);
    if (m !== null) this.#listening ??= { host: m[1] as string, port: Number(m[2]) };
    return this.pid === 0 ? undefined : this.#listening;
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the parenthesised command name, or undefined if gone. */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Signals one process by pid; a pid that names a group (0, negative) or init is refused. */
export function signal(pid: number, name: NodeJS.Signals): void {
  // 0 and negative pids address process groups, 1 is init: never ours to signal.
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function shellQuote(word: string): string {
  return /^[\w./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
