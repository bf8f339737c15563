/**
 * The `relay` command: the flags of cli/relay-options.ts, then `runRelay` until SIGINT/SIGTERM.
 * `npm start` runs it through cli/relay-main.ts; the `alphanet` CLI mounts the same command as
 * `alphanet relay`.
 */
import { Command } from 'commander';
import { addRelayOptions, DEFAULT_STOP_TIMEOUT_MS, parseObserveCliOptions, parseRelayCliOptions } from './relay-options.ts';
import { withObservation } from './relay-observation.ts';
import { runRelay, type RunningRelay, type RunRelayHooks } from './run-relay.ts';
import { reloadTlsOnHangup } from './relay-tls.ts';

/** After a failed start, how long open handles may keep the process before it exits anyway. */
const FAILED_START_EXIT_MS = 1_000;
const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Exits on SIGINT/SIGTERM whatever state stdout and stderr are in: the first signal stops the
 * relay gracefully and exits 0 (1 when the stop fails or passes `stopTimeoutMs`); a second
 * signal of either kind exits at once with 128 + the signal number.
 */
function exitOnSignals(running: RunningRelay, stopTimeoutMs: number): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
      return;
    }
    stopping = true;
    running.logger.info({ signal }, 'signal received, closing');
    const timer = setTimeout(() => {
      running.logger.error({ stopTimeoutMs }, 'graceful stop took too long, exiting');
      process.exit(1);
    }, stopTimeoutMs);
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        clearTimeout(timer);
        running.logger.error({ err: error }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * `relay`: runs until SIGINT/SIGTERM, then closes gracefully and exits 0. Any start step that
 * fails (store, relay port, HTTP port) closes what earlier steps opened and exits 1 with the
 * message, which names the file or address.
 */
export function buildRelayCommand(hooks: RunRelayHooks = {}): Command {
  const command = addRelayOptions(new Command('relay').description('run the AlphaNET relay server'));
  command.action(async (raw: Record<string, unknown>) => {
    const cli = parseRelayCliOptions(raw);
    // stdout carries only the ready lines: a reader that has gone (`| head -1`) must not crash the relay.
    if (!hooks.stdout) process.stdout.on('error', () => {});
    let running: RunningRelay;
    try {
      running = await runRelay(cli, withObservation(parseObserveCliOptions(raw), hooks));
    } catch (error) {
      process.stderr.write(`alphanet relay: ${(error as Error).message}\n`);
      process.exitCode = 1;
      // Everything opened was closed; should a library still hold a handle, exit anyway.
      setTimeout(() => process.exit(1), FAILED_START_EXIT_MS).unref();
      return;
    }
    exitOnSignals(running, Number(raw.stopTimeout ?? DEFAULT_STOP_TIMEOUT_MS));
    // SIGHUP: renewed --tls-cert/--tls-key files for new connections (a failed reload keeps the old).
    if (running.tlsFiles) reloadTlsOnHangup(running.relay, running.tlsFiles, running.logger);
  });
  return command;
}
