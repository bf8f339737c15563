/**
 * `alphanet expose VPORT HOST:PORT`: serve a real TCP service at a virtual port until SIGINT or
 * SIGTERM, then print a summary. Also holds the pieces `alphanet forward` shares with it.
 */
import net from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import { connect } from '../actors/client/index.ts';
import type { Client } from '../actors/client/index.ts';
import { createLogger } from '../actors/logger.ts';
import type { Logger } from '../actors/logger.ts';
import { expose, DEFAULT_SHUTDOWN_GRACE_MS } from '../actors/tunnel/index.ts';
import type { TunnelStats } from '../actors/tunnel/index.ts';
import { addClientOptions, connectOptionsFrom, exitAfterStdout, fail } from './client-options.ts';
import type { ClientFlags } from './client-options.ts';

interface ExposeFlags extends ClientFlags {
  allow?: string[];
  grace: number;
}

/** A port argument in `min`..65535, for commander. */
export function portArgument(min: number): (text: string) => number {
  return (text) => {
    const port = Number(text);
    if (!/^\d+$/.test(text) || port < min || port > 65535) throw new InvalidArgumentError(`"${text}" is not a port ${min}..65535`);
    return port;
  };
}

/** "HOST:PORT" (IPv6 in brackets) for commander. */
export function endpointArgument(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError(`"${text}" is not HOST:PORT`);
  return { host: m[1] ?? m[2], port };
}

/** "ADDRESS:VPORT" with a virtual IPv4 address, checked before anything connects. */
export function virtualEndpointArgument(text: string): { host: string; port: number } {
  const endpoint = endpointArgument(text);
  if (!net.isIPv4(endpoint.host)) throw new InvalidArgumentError(`"${endpoint.host}" is not a virtual IPv4 address (ADDRESS:VPORT)`);
  return endpoint;
}

function allowArgument(text: string): string[] {
  const ips = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ips.find((ip) => !net.isIPv4(ip));
  if (bad !== undefined || ips.length === 0) throw new InvalidArgumentError(`"${bad ?? text}" is not a virtual IPv4 address`);
  return ips;
}

/** What a running tunnel offers the shared run loop. */
interface RunningTunnel {
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
 * Connects, starts a tunnel, prints `ready` on stdout, runs until SIGINT/SIGTERM (or the tunnel
 * stops by itself), then prints `summary(stats)` and exits: 0 after a signal, 1 after a failure.
 * The first signal stops listening and gives open connections `graceMs` to finish; a second one
 * exits at once; either way the process is gone within graceMs + SHUTDOWN_CLOSE_TIMEOUT_MS.
 */
export async function runTunnel(
  name: string,
  flags: ClientFlags & { grace: number },
  start: (client: Client, logger: Logger) => Promise<RunningTunnel & { ready: string }>,
  summary: (stats: TunnelStats) => string,
): Promise<void> {
  const logger = createLogger({ name: `alphanet-${name}` });
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
  try {
    // A tunnel is long-lived: ride out relay restarts; listeners bind their port again. A signal
    // while the relay is still being reached (or again) ends that at once.
    const client = await connect({ ...connectOptionsFrom(flags), reconnect: true, logger, signal: stop.signal });
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
    await client.close();
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

function graceArgument(text: string): number {
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms > 3_600_000) throw new InvalidArgumentError(`"${text}" is not a number of milliseconds 0..3600000`);
  return ms;
}

/** "3 connections (1 refused)". */
export function countText(stats: TunnelStats): string {
  return `${stats.total} connection${stats.total === 1 ? '' : 's'} (${stats.refused} refused)`;
}

export function buildExposeCommand(): Command {
  return addGraceOption(addClientOptions(new Command('expose')))
    .description('serve a real TCP service (HOST:PORT) at virtual port VPORT of this machine until stopped')
    .argument('<vport>', 'virtual port to listen on', portArgument(1))
    .argument('<target>', 'HOST:PORT of the TCP service to carry each connection to', endpointArgument)
    .option('--allow <ips>', 'comma-separated virtual IPs that may connect; everyone else is denied (default: everyone)', allowArgument)
    .action(async (vport: number, target: { host: string; port: number }, flags: ExposeFlags) => {
      const where = `${target.host}:${target.port}`;
      await runTunnel(
        'expose',
        flags,
        async (client, logger) => {
          const tunnel = await expose({ client, port: vport, target, logger, ...(flags.allow ? { allow: flags.allow } : {}) });
          return Object.assign(tunnel, { ready: `exposing ${tunnel.address} -> ${where}` });
        },
        (s) => `expose summary: ${countText(s)}, ${s.virtualToTcpBytes} bytes to ${where}, ${s.tcpToVirtualBytes} bytes from it`,
      );
    });
}
