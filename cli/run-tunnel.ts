/**
 * The run loop `alphanet expose` and `alphanet forward` share: reach the relay (waiting while it
 * is down), start the tunnel, print its ready line, run until SIGINT/SIGTERM, print a summary.
 */
import type { Command } from 'commander';
import type { Client } from '../actors/client/index.ts';
import type { Logger } from '../actors/logger.ts';
import { DEFAULT_SHUTDOWN_GRACE_MS } from '../tunnel/index.ts';
import type { TunnelStats, UdpTunnelCounts } from '../tunnel/index.ts';
import { graceArgument } from './arguments.ts';
import { createCliLogger } from './cli-logger.ts';
import { connectOptionsFrom, exitAfterStdout, fail } from './client-options.ts';
import type { ClientFlags } from './client-options.ts';
import { connectWhenUp } from './relay-wait.ts';

/** What a running tunnel offers the run loop. */
export interface RunningTunnel {
  readonly closed: Promise<void>;
  readonly error: Error | undefined;
  stats(): TunnelStats;
  shutdown(graceMs: number): Promise<void>;
}

/**
 * After the grace period, time allowed for the resets and the goodbye to the relay before the
 * process exits anyway: a relay that dies in the same moment must not keep a tunnel running.
 */
export const SHUTDOWN_CLOSE_TIMEOUT_MS = 2_000;

/** Exit status after a second signal: 128 + the signal's number, as a shell reports it. */
function signalExitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGINT' ? 130 : 143;
}

/**
 * Starts a tunnel with `start(client, logger)` and prints its `ready` line on stdout, runs until
 * SIGINT/SIGTERM (or the tunnel stops by itself), then prints `summary(stats)` and exits: 0
 * after a signal, 1 after a failure. `client()` connects to the relay (once, however often it
 * is called), waiting for a relay that is down, and rides out restarts later; `start` calls it
 * when it is ready to (forward binds its port first). The first signal stops listening and
 * gives open connections `graceMs` to finish; a second one exits at once; either way the
 * process is gone within graceMs + SHUTDOWN_CLOSE_TIMEOUT_MS.
 */
export async function runTunnel(
  name: string,
  flags: ClientFlags & { grace: number },
  start: (client: () => Promise<Client>, logger: Logger) => Promise<RunningTunnel & { ready: string }>,
  summary: (stats: TunnelStats) => string,
): Promise<void> {
  const logger = createCliLogger(`alphanet-${name}`);
  const stop = new AbortController();
  let tunnel: (RunningTunnel & { ready: string }) | undefined;
  let summarised = false;
  const printSummary = (): void => {
    if (tunnel === undefined || summarised) return;
    summarised = true;
    process.stdout.write(`${summary(tunnel.stats())}\n`);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      process.stderr.write(`alphanet: ${signal} again: exiting now\n`);
      printSummary();
      process.exit(signalExitCode(signal));
    }
    stop.abort(signal);
    setTimeout(() => {
      process.stderr.write(`alphanet: ${name} did not stop within ${flags.grace + SHUTDOWN_CLOSE_TIMEOUT_MS} ms of ${signal}; exiting\n`);
      printSummary();
      process.exit(1);
    }, flags.grace + SHUTDOWN_CLOSE_TIMEOUT_MS);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  let connecting: Promise<Client> | undefined;
  // A tunnel is long-lived: wait for the relay, ride out its restarts (listeners bind their
  // port again). A signal while the relay is still being reached ends that at once.
  const client = (): Promise<Client> =>
    (connecting ??= connectWhenUp({ ...connectOptionsFrom(flags, logger), reconnect: true, logger, signal: stop.signal }, logger));
  try {
    tunnel = await start(client, logger);
    process.stdout.write(`${tunnel.ready}\n`);
    const stopped = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    if (!stop.signal.aborted) await Promise.race([tunnel.closed, stopped]);
    if (stop.signal.aborted) {
      // The listener is closed synchronously by shutdown(); only then is it said.
      const done = tunnel.shutdown(flags.grace);
      logger.info({ signal: stop.signal.reason, graceMs: flags.grace }, 'stopping: no new connections; open ones may finish (signal again to exit now)');
      await done;
    }
    printSummary();
    await connecting?.then((c) => c.close(), () => {});
    if (tunnel.error && !stop.signal.aborted) fail(tunnel.error);
    logger.flush(() => exitAfterStdout(0));
  } catch (error) {
    // Stopped while connecting: nothing ran, nothing failed.
    if (stop.signal.aborted) logger.flush(() => exitAfterStdout(0));
    else fail(error);
  }
}

/** `--grace <ms>`, shared by expose and forward. */
export function addGraceOption(command: Command): Command {
  return command.option(
    '--grace <ms>',
    'after SIGINT/SIGTERM, how long open connections may finish before they are reset (a second signal exits at once)',
    graceArgument,
    DEFAULT_SHUTDOWN_GRACE_MS,
  );
}

/** "2 flows, 100 datagrams (51200 bytes) to X, 100 (51200 bytes) from it, 0 dropped", for `--udp` tunnels. */
export function udpSummaryText(name: 'expose' | 'forward', stats: TunnelStats, where: string): string {
  const s = stats as TunnelStats & UdpTunnelCounts;
  // forward sends to the virtual address what it reads from UDP; expose sends to its UDP target what it gets from AlphaNET.
  const [toN, toBytes, fromN, fromBytes] =
    name === 'forward'
      ? [s.udpToVirtualDatagrams, s.udpToVirtualBytes, s.virtualToUdpDatagrams, s.virtualToUdpBytes]
      : [s.virtualToUdpDatagrams, s.virtualToUdpBytes, s.udpToVirtualDatagrams, s.udpToVirtualBytes];
  const flows = `${s.totalFlows} flow${s.totalFlows === 1 ? '' : 's'}`;
  return `${name} summary: ${flows}, ${toN} datagrams (${toBytes} bytes) to ${where}, ${fromN} (${fromBytes} bytes) from it, ${s.dropped} dropped`;
}

/** "3 connections (1 refused)". */
export function countText(stats: TunnelStats): string {
  return `${stats.total} connection${stats.total === 1 ? '' : 's'} (${stats.refused} refused)`;
}
