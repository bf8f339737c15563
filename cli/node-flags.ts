/**
 * Node flags a command needs whatever started it (`npm start`, `alphanet relay` from a global
 * install, `npx alphanet relay`, `node cli/alphanet.ts relay`). V8 sizes its heap at start-up,
 * so a flag like `--initial-old-space-size` cannot be set from inside a running process: the
 * command runs itself once more as a child with the flags added, and this process only relays
 * signals and the exit status. An environment variable marks the child so it never re-runs.
 */
import { spawn } from 'node:child_process';

/**
 * The relay's flags: without the 64 MB floor, V8 runs a full mark-compact every few MB relayed
 * (TCP buffers are external memory) and the relay loses about half its throughput
 * (docs/RELAY.md "Heap flag", docs/BENCHMARKS.md).
 */
export const RELAY_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];

/** Set in the child's environment (to the flags it was given); a process that has it never re-runs. */
export const NODE_FLAGS_ENV = 'ALPHANET_NODE_FLAGS';

/** Signals passed on to the child; the child decides what they mean (a second one is "now"). */
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** `--name=value` or `--name value` → `--name`, with `_` read as `-` as V8 does. */
function flagName(flag: string): string {
  return (flag.split('=')[0] as string).replace(/_/g, '-');
}

/**
 * The flags of `wanted` this process does not already run with (from its command line or
 * NODE_OPTIONS). A value the user chose (`--initial-old-space-size=128`) is kept, not overridden.
 */
export function missingNodeFlags(
  wanted: readonly string[],
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
): string[] {
  const present = new Set([...execArgv, ...nodeOptions.split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  return wanted.filter((flag) => !present.has(flagName(flag)));
}

/**
 * Makes sure this process runs with `flags`. Resolves `false` when it already does (or cannot be
 * re-run: under Deno, whose V8 flags are `deno run --v8-flags=…`), and the caller goes on.
 * Otherwise it runs the same script with the same arguments as a child with the flags added,
 * passes signals on, and exits with the child's status: the returned promise never settles.
 */
export function ensureNodeFlags(flags: readonly string[]): Promise<boolean> {
  if ('Deno' in globalThis || process.env[NODE_FLAGS_ENV] !== undefined) {
    watchParent();
    return Promise.resolve(false);
  }
  const missing = missingNodeFlags(flags);
  const script = process.argv[1];
  if (missing.length === 0 || script === undefined) return Promise.resolve(false);
  if (process.execArgv.some((arg) => arg.startsWith('--inspect'))) {
    // A debugger is attached to this process: a child would run out of its reach.
    process.stderr.write(`alphanet: running without ${missing.join(' ')} under --inspect (add it to the node command line)\n`);
    return Promise.resolve(false);
  }
  const child = spawn(process.execPath, [...missing, ...process.execArgv, script, ...process.argv.slice(2)], {
    // The IPC channel is how the child learns that this process died (even by SIGKILL).
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [NODE_FLAGS_ENV]: missing.join(' ') },
    // Its own process group: a terminal's Ctrl-C reaches only this process, which passes it on
    // once, so the child sees one signal per keypress as if it had been started directly.
    detached: process.platform !== 'win32',
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  return new Promise<boolean>(() => {
    child.once('error', (error) => {
      process.stderr.write(`alphanet: cannot start ${process.execPath}: ${error.message}\n`);
      process.exit(1);
    });
    child.once('exit', (code, signal) => {
      for (const s of FORWARDED_SIGNALS) process.off(s, forward);
      // Die the same way, so whoever started this process sees what happened to the command.
      if (signal) process.kill(process.pid, signal);
      process.exit(code ?? 1);
    });
  });
}

let watchingParent = false;

/** In a re-run child: when the parent goes away (killed, crashed), close as on SIGTERM (once). */
function watchParent(): void {
  if (watchingParent || process.env[NODE_FLAGS_ENV] === undefined || !process.channel) return;
  watchingParent = true;
  // The channel must not keep the process alive once the command is done.
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
