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
import { expose } from '../actors/tunnel/index.ts';
import type { TunnelStats } from '../actors/tunnel/index.ts';
import { addClientOptions, connectOptionsFrom, exitAfterStdout, fail } from './client-options.ts';
import type { ClientFlags } from './client-options.ts';

interface ExposeFlags extends ClientFlags {
  allow?: string[];
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
}

/**
 * Connects, starts a tunnel, prints `ready` on stdout, runs until SIGINT/SIGTERM (or the tunnel
 * stops by itself), then prints `summary(stats)` and exits: 0 after a signal, 1 after a failure.
 */
export async function runTunnel(
  name: string,
  flags: ClientFlags,
  start: (client: Client, logger: Logger, signal: AbortSignal) => Promise<RunningTunnel & { ready: string }>,
  summary: (stats: TunnelStats) => string,
): Promise<void> {
  const logger = createLogger({ name: `alphanet-${name}` });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    // A tunnel is long-lived: ride out relay restarts; listeners bind their port again.
    const client = await connect({ ...connectOptionsFrom(flags), reconnect: true, logger });
    const tunnel = await start(client, logger, stop.signal);
    process.stdout.write(`${tunnel.ready}\n`);
    await tunnel.closed;
    process.stdout.write(`${summary(tunnel.stats())}\n`);
    await client.close();
    if (tunnel.error) fail(tunnel.error);
    logger.flush(() => exitAfterStdout(0));
  } catch (error) {
    fail(error);
  }
}

/** "3 connections (1 refused)". */
export function countText(stats: TunnelStats): string {
  return `${stats.total} connection${stats.total === 1 ? '' : 's'} (${stats.refused} refused)`;
}

export function buildExposeCommand(): Command {
  return addClientOptions(new Command('expose'))
    .description('serve a real TCP service (HOST:PORT) at virtual port VPORT of this machine until stopped')
    .argument('<vport>', 'virtual port to listen on', portArgument(1))
    .argument('<target>', 'HOST:PORT of the TCP service to carry each connection to', endpointArgument)
    .option('--allow <ips>', 'comma-separated virtual IPs that may connect; everyone else is denied (default: everyone)', allowArgument)
    .action(async (vport: number, target: { host: string; port: number }, flags: ExposeFlags) => {
      const where = `${target.host}:${target.port}`;
      await runTunnel(
        'expose',
        flags,
        async (client, logger, signal) => {
          const tunnel = await expose({ client, port: vport, target, logger, signal, ...(flags.allow ? { allow: flags.allow } : {}) });
          return Object.assign(tunnel, { ready: `exposing ${tunnel.address} -> ${where}` });
        },
        (s) => `expose summary: ${countText(s)}, ${s.virtualToTcpBytes} bytes to ${where}, ${s.tcpToVirtualBytes} bytes from it`,
      );
    });
}
