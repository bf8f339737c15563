/**
 * `alphanet forward LOCALPORT ADDRESS:VPORT`: a real local TCP port carried to a virtual
 * address until SIGINT or SIGTERM, then a summary.
 */
import { Command } from 'commander';
import { forward, forwardUdp, DEFAULT_FORWARD_LISTEN_HOST } from '../tunnel/index.ts';
import { portArgument, virtualEndpointArgument } from './arguments.ts';
import type { ClientFlags } from './client-options.ts';
import { addClientOptions } from './client-options.ts';
import { addGraceOption, countText, runTunnel, udpSummaryText } from './run-tunnel.ts';

interface ForwardFlags extends ClientFlags {
  listenHost: string;
  grace: number;
  udp?: boolean;
}

export function buildForwardCommand(): Command {
  return addGraceOption(addClientOptions(new Command('forward')))
    .description('listen on a real local TCP port and carry each connection to ADDRESS:VPORT until stopped (UDP datagrams with --udp)')
    .argument('<localport>', 'real TCP port to listen on (0 picks a free one, printed on start)', portArgument(0))
    .argument('<remote>', 'virtual ADDRESS:VPORT to carry each connection to', virtualEndpointArgument)
    .option('--listen-host <host>', 'real interface to listen on', DEFAULT_FORWARD_LISTEN_HOST)
    .option('--udp', 'bind a real local UDP port and carry its datagrams to datagram port ADDRESS:VPORT (docs/TUNNELS.md "--udp")')
    .action(async (localPort: number, remote: { host: string; port: number }, flags: ForwardFlags) => {
      const where = `${remote.host}:${remote.port}`;
      if (flags.udp) {
        await runTunnel(
          'forward',
          flags,
          async (client, logger) => {
            // Bound before the relay is dialled, as for TCP: a clash fails at once.
            const tunnel = await forwardUdp({ client, localPort, listenHost: flags.listenHost, remote: { address: remote.host, port: remote.port }, logger });
            return Object.assign(tunnel, { ready: `forwarding udp ${flags.listenHost}:${tunnel.port} -> ${where}` });
          },
          (s) => udpSummaryText('forward', s, where),
        );
        return;
      }
      await runTunnel(
        'forward',
        flags,
        async (client, logger) => {
          // The port is bound before the relay is dialled: a clash fails at once, and a TCP client
          // that connects while the relay is still being reached waits for it.
          const tunnel = await forward({
            client,
            localPort,
            listenHost: flags.listenHost,
            remote: { address: remote.host, port: remote.port },
            logger,
          });
          return Object.assign(tunnel, { ready: `forwarding ${tunnel.host}:${tunnel.port} -> ${where}` });
        },
        (s) => `forward summary: ${countText(s)}, ${s.tcpToVirtualBytes} bytes to ${where}, ${s.virtualToTcpBytes} bytes from it`,
      );
    });
}
