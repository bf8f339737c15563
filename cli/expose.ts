/**
 * `alphanet expose VPORT HOST:PORT`: serve a real TCP service at a virtual port until SIGINT or
 * SIGTERM, then print a summary.
 */
import { Command } from 'commander';
import { describeError } from '../actors/describe-error.ts';
import { expose, exposeUdp, probeTarget } from '../tunnel/index.ts';
import { allowArgument, endpointArgument, portArgument } from './arguments.ts';
import { addClientOptions } from './client-options.ts';
import type { ClientFlags } from './client-options.ts';
import { addGraceOption, countText, runTunnel, udpSummaryText } from './run-tunnel.ts';

interface ExposeFlags extends ClientFlags {
  allow?: string[];
  grace: number;
  udp?: boolean;
}

export function buildExposeCommand(): Command {
  return addGraceOption(addClientOptions(new Command('expose')))
    .description('serve a real TCP service (HOST:PORT) at virtual port VPORT of this machine until stopped (a UDP service with --udp)')
    .argument('<vport>', 'virtual port to listen on', portArgument(1))
    .argument('<target>', 'HOST:PORT of the TCP service to carry each connection to', endpointArgument)
    .option('--allow <ips>', 'comma-separated virtual IPs that may connect; everyone else is denied (default: everyone)', allowArgument)
    .option('--udp', 'carry UDP datagrams to a real UDP service at HOST:PORT, served at datagram port VPORT (docs/TUNNELS.md "--udp")')
    .action(async (vport: number, target: { host: string; port: number }, flags: ExposeFlags) => {
      const where = `${target.host}:${target.port}`;
      if (flags.udp) {
        await runTunnel(
          'expose',
          flags,
          async (client, logger) => {
            const tunnel = await exposeUdp({ client: await client(), port: vport, target, logger, ...(flags.allow ? { allow: flags.allow } : {}) });
            return Object.assign(tunnel, { ready: `exposing udp ${tunnel.address} -> ${where}` });
          },
          (s) => udpSummaryText('expose', s, where),
        );
        return;
      }
      await runTunnel(
        'expose',
        flags,
        async (client, logger) => {
          // A dead or mistyped target is said now, not as one refusal per connection later; the
          // tunnel still starts, since the target may well come up after it.
          const unreachable = await probeTarget(target);
          if (unreachable) {
            logger.warn({ target: where, reason: describeError(unreachable) }, 'the target does not answer a TCP connect; exposing it anyway (connections are refused until it does)');
          }
          const tunnel = await expose({ client: await client(), port: vport, target, logger, ...(flags.allow ? { allow: flags.allow } : {}) });
          return Object.assign(tunnel, { ready: `exposing ${tunnel.address} -> ${where}` });
        },
        (s) => `expose summary: ${countText(s)}, ${s.virtualToTcpBytes} bytes to ${where}, ${s.tcpToVirtualBytes} bytes from it`,
      );
    });
}
