/**
 * `alphanet proxy [--listen HOST:PORT]`: one local SOCKS5 and HTTP CONNECT port through which any
 * program reaches any virtual host and port, until SIGINT or SIGTERM, then a summary.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_PROXY_LISTEN_HOST, DEFAULT_PROXY_PORT, parseAllowList, proxy } from '../tunnel/index.ts';
import type { ClientFlags } from './client-options.ts';
import { addClientOptions } from './client-options.ts';
import { addGraceOption, countText, runTunnel } from './run-tunnel.ts';

interface ProxyFlags extends ClientFlags {
  listen: { host: string; port: number };
  allow?: string[];
  grace: number;
}

/** "HOST:PORT" to listen on (IPv6 in brackets); port 0 picks a free one. */
function listenArgument(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`"${text}" is not HOST:PORT (port 0..65535)`);
  return { host: m[1] ?? m[2], port };
}

/** Comma-separated addresses and CIDR blocks; the flag may be repeated. Checked here, before connecting. */
function allowArgument(text: string, previous: string[] | undefined): string[] {
  const entries = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) throw new InvalidArgumentError(`"${text}" names no address`);
  try {
    parseAllowList(entries);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return [...(previous ?? []), ...entries];
}

export function buildProxyCommand(): Command {
  return addGraceOption(addClientOptions(new Command('proxy')))
    .description('a local SOCKS5 and HTTP CONNECT proxy to every virtual host and port, until stopped')
    .addOption(
      new Option('--listen <host:port>', 'real interface and TCP port to listen on (port 0 picks a free one, printed on start)')
        .argParser(listenArgument)
        .default({ host: DEFAULT_PROXY_LISTEN_HOST, port: DEFAULT_PROXY_PORT }, `${DEFAULT_PROXY_LISTEN_HOST}:${DEFAULT_PROXY_PORT}`),
    )
    .option('--allow <cidrs>', 'comma-separated virtual IPs or CIDR blocks the proxy may reach; others are refused (default: all)', allowArgument)
    .action(async (flags: ProxyFlags) => {
      await runTunnel(
        'proxy',
        flags,
        async (client, logger) => {
          // Waits for the relay (as expose does) before listening: a program that connects to the
          // proxy meanwhile would otherwise be refused with a general failure.
          const tunnel = await proxy(await client(), { listen: flags.listen, logger, ...(flags.allow ? { allow: flags.allow } : {}) });
          return Object.assign(tunnel, { ready: `proxy listening on ${tunnel.address} (SOCKS5 and HTTP CONNECT)` });
        },
        (s) => `proxy summary: ${countText(s)}, ${s.tcpToVirtualBytes} bytes to virtual hosts, ${s.virtualToTcpBytes} bytes from them`,
      );
    });
}
