/**
 * The relay command's observation flags (`--http-port`, `--http-host`, `--inspect [url]`) and
 * the hooks that wire them into `runRelay`, kept here so cli/relay-options.ts only mounts them.
 */
import { Option, type Command } from 'commander';
import type { RunRelayHooks } from '../../cli/relay-options.ts';
import type { RelayOptions } from '../relay/index.ts';
import { createRelayObservation } from './index.ts';
import { combineInspect, DEFAULT_INSPECT_URL } from './inspect.ts';
import { DEFAULT_HTTP_HOST } from './observe-server.ts';

/** Parsed observation flags. */
export interface ObserveCliOptions {
  /** Serve the dashboard, /metrics, /healthz and /api/status on this port. @default undefined (off) */
  httpPort?: number;
  /** @default DEFAULT_HTTP_HOST ('127.0.0.1') */
  httpHost: string;
  /** Stately inspector WebSocket URL. @default undefined (off); `--inspect` alone: DEFAULT_INSPECT_URL */
  inspect?: string;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port: ${value}`);
  return n;
}

/** Adds `--http-port`, `--http-host` and `--inspect [url]` to a command. */
export function addObserveOptions(command: Command): Command {
  return command
    .addOption(new Option('--http-port <port>', 'serve the dashboard, /metrics, /healthz and /api/status on this port (0 = any free port)').env('ALPHANET_HTTP_PORT').argParser(port))
    .addOption(new Option('--http-host <host>', 'address the HTTP server listens on').env('ALPHANET_HTTP_HOST').default(DEFAULT_HTTP_HOST))
    .addOption(new Option('--inspect [url]', `stream every actor to a Stately inspector over WebSocket (default ${DEFAULT_INSPECT_URL})`).env('ALPHANET_INSPECT'));
}

/** The observation flags out of commander's parsed options. */
export function parseObserveCliOptions(raw: Record<string, unknown>): ObserveCliOptions {
  return {
    httpPort: raw.httpPort === undefined ? undefined : Number(raw.httpPort),
    httpHost: String(raw.httpHost ?? DEFAULT_HTTP_HOST),
    inspect: raw.inspect === undefined || raw.inspect === false ? undefined : raw.inspect === true ? DEFAULT_INSPECT_URL : String(raw.inspect),
  };
}

/**
 * Hooks for `runRelay` that add observation per the flags, layered over `hooks`. With neither
 * flag the hooks are returned unchanged, so a plain relay carries no observation cost at all.
 */
export function withObservation(cli: ObserveCliOptions, hooks: RunRelayHooks = {}): RunRelayHooks {
  if (cli.httpPort === undefined && cli.inspect === undefined) return hooks;
  const observation = createRelayObservation({ inspectUrl: cli.inspect });
  return {
    ...hooks,
    onStoreWrite: (info) => {
      observation.onStoreWrite(info);
      hooks.onStoreWrite?.(info);
    },
    relayOptions: async (options) => {
      const base: RelayOptions = hooks.relayOptions ? await hooks.relayOptions(options) : options;
      return { ...base, inspect: combineInspect(observation.inspect, base.inspect) };
    },
    afterStart: async (running) => {
      const server = await observation.attach(running.relay, { port: cli.httpPort, host: cli.httpHost, logger: running.logger });
      if (server) {
        running.logger.info({ url: server.url }, `dashboard on ${server.url}/`);
        // On stdout too, before `listening on`: with --http-port 0 it is the only way to learn the port.
        (hooks.stdout ?? process.stdout).write(`dashboard on ${server.url}/\n`);
      }
      if (cli.inspect) running.logger.info({ url: cli.inspect }, 'streaming actors to the inspector');
      await hooks.afterStart?.(running);
    },
    beforeStop: async (running) => {
      await hooks.beforeStop?.(running);
      await observation.close();
    },
  };
}
