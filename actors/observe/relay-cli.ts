/**
 * The relay command's observation flags (`--http-port`, `--http-host`, `--inspect [url]`) and
 * the hooks that wire them into `runRelay`, kept here so cli/relay-options.ts only mounts them.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { RunRelayHooks } from '../../cli/relay-options.ts';
import type { RelayOptions } from '../relay/index.ts';
import { createRelayObservation } from './index.ts';
import { combineInspect, DEFAULT_INSPECT_URL } from './inspect.ts';
import {
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_MAX_CONNECTIONS,
  DEFAULT_MAX_EVENT_STREAMS,
  DEFAULT_MAX_STREAM_QUEUED_BYTES,
  DEFAULT_STATUS_LIST_LIMIT,
  DEFAULT_STREAM_DRAIN_TIMEOUT_MS,
} from './observe-server.ts';

/** Parsed observation flags. */
export interface ObserveCliOptions {
  /** Serve the dashboard, /metrics, /healthz and /api/status on this port. @default undefined (off) */
  httpPort?: number;
  /** @default DEFAULT_HTTP_HOST ('127.0.0.1') */
  httpHost: string;
  /** Stately inspector WebSocket URL. @default undefined (off); `--inspect` alone: DEFAULT_INSPECT_URL */
  inspect?: string;
  /** The HTTP server's bounds, each a flag (see HTTP_BOUNDS). */
  bounds: HttpBounds;
}

/** The bounds of the observation HTTP server, as attach() takes them. */
export interface HttpBounds {
  maxEventStreams: number;
  maxStreamQueuedBytes: number;
  streamDrainTimeoutMs: number;
  statusListLimit: number;
  maxConnections: number;
}

/** [flag, env var, description, default, min, key]: one row per bound, docs/OBSERVABILITY.md. */
const HTTP_BOUNDS: ReadonlyArray<[string, string, string, number, number, keyof HttpBounds]> = [
  ['--http-max-streams <n>', 'ALPHANET_HTTP_MAX_STREAMS', '/api/events streams at once (more get 503)', DEFAULT_MAX_EVENT_STREAMS, 1, 'maxEventStreams'],
  ['--http-stream-max-queued-bytes <bytes>', 'ALPHANET_HTTP_STREAM_MAX_QUEUED_BYTES', 'bytes one /api/events stream may have queued before it is cut', DEFAULT_MAX_STREAM_QUEUED_BYTES, 1024, 'maxStreamQueuedBytes'],
  ['--http-stream-drain-timeout <ms>', 'ALPHANET_HTTP_STREAM_DRAIN_TIMEOUT_MS', 'cut an /api/events stream that has not drained for this long', DEFAULT_STREAM_DRAIN_TIMEOUT_MS, 1, 'streamDrainTimeoutMs'],
  ['--http-list-limit <n>', 'ALPHANET_HTTP_LIST_LIMIT', 'most clients and most pairs one status lists (?limit= asks for fewer)', DEFAULT_STATUS_LIST_LIMIT, 0, 'statusListLimit'],
  ['--http-max-connections <n>', 'ALPHANET_HTTP_MAX_CONNECTIONS', 'TCP connections to the HTTP server at once', DEFAULT_HTTP_MAX_CONNECTIONS, 1, 'maxConnections'],
];

function bound(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > 2 ** 31 - 1) {
      throw new InvalidArgumentError(`expected an integer ${min}..${2 ** 31 - 1}`);
    }
    return n;
  };
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port: ${value}`);
  return n;
}

/** Adds `--http-port`, `--http-host`, the HTTP bounds and `--inspect [url]` to a command. */
export function addObserveOptions(command: Command): Command {
  for (const [flag, env, description, defaultValue, min] of HTTP_BOUNDS) {
    command.addOption(new Option(flag, description).env(env).default(defaultValue).argParser(bound(min)));
  }
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
    bounds: Object.fromEntries(
      HTTP_BOUNDS.map(([flag, , , defaultValue, , key]) => {
        const name = flag.slice(2).split(' ')[0]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
        return [key, raw[name] === undefined ? defaultValue : Number(raw[name])];
      }),
    ) as unknown as HttpBounds,
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
      const server = await observation.attach(running.relay, { port: cli.httpPort, host: cli.httpHost, logger: running.logger, ...cli.bounds });
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
