/** Flags every client command shares, and the one way commands report errors. */
import type { Command } from 'commander';
import { createLogger } from '../actors/logger.ts';
import { DEFAULT_RELAY } from '../actors/client/index.ts';
import type { ConnectOptions } from '../actors/client/index.ts';
import { AlphanetError } from '../protocol/errors.ts';
import { createWebSocketInspection, DEFAULT_INSPECT_URL } from '../actors/observe/inspect.ts';

/** Parsed values of {@link addClientOptions}. */
export interface ClientFlags {
  relay: string;
  localAddress?: string;
  /** `--inspect [url]`: true when given without a URL. */
  inspect?: string | true;
}

/** Adds --relay and --local-address to a client command. */
export function addClientOptions(command: Command): Command {
  return command
    .option('--relay <host:port>', 'relay to connect to (env ALPHANET_RELAY)', process.env.ALPHANET_RELAY ?? DEFAULT_RELAY)
    .option('--local-address <ip>', 'real source address to connect from (decides the virtual IP)')
    .option('--inspect [url]', `stream the client's actors to a Stately inspector over WebSocket (default ${DEFAULT_INSPECT_URL})`);
}

/** connect() options from the shared flags; logs only when ALPHANET_LOG_LEVEL asks for them. */
export function connectOptionsFrom(flags: ClientFlags): ConnectOptions {
  return {
    relay: flags.relay,
    ...(flags.localAddress ? { localAddress: flags.localAddress } : {}),
    ...(process.env.ALPHANET_LOG_LEVEL ? { logger: createLogger({ name: 'alphanet-client' }) } : {}),
    ...(flags.inspect ? { inspect: createWebSocketInspection({ url: flags.inspect === true ? DEFAULT_INSPECT_URL : flags.inspect }).inspect } : {}),
  };
}

/** Prints an error in words (with its stable code) to stderr and exits non-zero. */
export function fail(error: unknown): never {
  const message = error instanceof AlphanetError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
  process.stderr.write(`alphanet: ${message}\n`);
  process.exit(1);
}

/** Exits once stdout has flushed what was written to it. */
export function exitAfterStdout(code: number): void {
  process.stdout.write('', () => process.exit(code));
}
