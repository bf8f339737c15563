/**
 * The `relay` command: flags and environment variables for every relay option (a flag beats
 * its environment variable, which beats the default), then `runRelay`. `npm start` runs it
 * through cli/relay-main.ts; the `alphanet` CLI mounts the same command as `alphanet relay`.
 * To add options, add them to the command returned by `buildRelayCommand` and read them from
 * the raw options in a `beforeStart` hook; `parseRelayCliOptions` keeps the relay's own.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { LevelWithSilent } from 'pino';
import { createLogger, type Logger } from '../actors/logger.ts';
import {
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_HIGH_WATER_MARK_BYTES,
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_KEEPALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT,
  DEFAULT_MAX_SOCKETS_PER_CLIENT,
  DEFAULT_PORT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_IPV6_PREFIX_LENGTH,
  DEFAULT_MAX_BOUND_PORTS,
  DEFAULT_MAX_LOG_FIELD_CHARS,
  DEFAULT_MAX_PAIRS,
  DEFAULT_MAX_PAIRS_PER_HOST,
  DEFAULT_MAX_PARTIAL_FRAME_BYTES,
  DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST,
  DEFAULT_MAX_PENDING_REQUESTS,
  DEFAULT_MAX_QUEUED_BYTES,
  startRelay,
  type Relay,
  type RelayLimits,
  type RelayOptions,
} from '../actors/relay/index.ts';
import { DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES } from '../protocol/constants.ts';
import {
  DEFAULT_DB_PATH,
  DEFAULT_IPV6_PREFIX_CAP,
  DEFAULT_SUBNET,
  openAddressStore,
  type AddressStore,
  type StoreWriteInfo,
} from '../storage/index.ts';
import { addObserveOptions, parseObserveCliOptions, withObservation } from '../actors/observe/relay-cli.ts';

/** The relay command's parsed options. */
export interface RelayCliOptions extends RelayLimits {
  host: string;
  port: number;
  db: string;
  subnet: string;
  logLevel: LevelWithSilent;
  /** Virtual IPs per IPv6 prefix of real IPs (0 = no cap); docs/STORAGE.md. */
  ipv6PrefixCap: number;
  /** The prefix length the cap counts by. */
  ipv6PrefixLength: number;
}

function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer ${min}..${max}`);
    }
    return n;
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** [flag, env var, description, default, min, max, key] of every numeric relay option. */
const NUMERIC: ReadonlyArray<[string, string, string, number, number, number, keyof RelayCliOptions]> = [
  ['--keepalive-interval <ms>', 'ALPHANET_KEEPALIVE_INTERVAL_MS', 'ping each client this often', DEFAULT_KEEPALIVE_INTERVAL_MS, 1, 2 ** 32 - 1, 'keepaliveIntervalMs'],
  ['--keepalive-timeout <ms>', 'ALPHANET_KEEPALIVE_TIMEOUT_MS', 'drop a client silent this long', DEFAULT_KEEPALIVE_TIMEOUT_MS, 1, 2 ** 32 - 1, 'keepaliveTimeoutMs'],
  ['--hello-timeout <ms>', 'ALPHANET_HELLO_TIMEOUT_MS', 'time allowed for Hello', DEFAULT_HELLO_TIMEOUT_MS, 1, 2 ** 31 - 1, 'helloTimeoutMs'],
  ['--request-timeout <ms>', 'ALPHANET_REQUEST_TIMEOUT_MS', 'time a target has to answer a request', DEFAULT_REQUEST_TIMEOUT_MS, 1, 2 ** 31 - 1, 'requestTimeoutMs'],
  ['--idle-timeout <ms>', 'ALPHANET_IDLE_TIMEOUT_MS', 'close socket connections idle this long (0 = never)', DEFAULT_IDLE_TIMEOUT_MS, 0, 2 ** 31 - 1, 'idleTimeoutMs'],
  ['--max-frame-bytes <n>', 'ALPHANET_MAX_FRAME_BYTES', 'largest frame accepted', DEFAULT_MAX_FRAME_BYTES, MIN_MAX_FRAME_BYTES, 2 ** 32 - 1, 'maxFrameBytes'],
  ['--max-sockets-per-client <n>', 'ALPHANET_MAX_SOCKETS_PER_CLIENT', 'ports plus socket connections per client connection', DEFAULT_MAX_SOCKETS_PER_CLIENT, 1, 2 ** 31 - 1, 'maxSocketsPerClient'],
  ['--max-pending-requests <n>', 'ALPHANET_MAX_PENDING_REQUESTS', 'requests in flight per client connection', DEFAULT_MAX_PENDING_REQUESTS_PER_CLIENT, 1, 2 ** 31 - 1, 'maxPendingRequestsPerClient'],
  ['--max-clients <n>', 'ALPHANET_MAX_CLIENTS', 'client connections at once', DEFAULT_MAX_CLIENTS, 1, 2 ** 31 - 1, 'maxClients'],
  ['--max-connections-per-ip <n>', 'ALPHANET_MAX_CONNECTIONS_PER_IP', 'client connections at once from one real IP', DEFAULT_MAX_CONNECTIONS_PER_IP, 1, 2 ** 31 - 1, 'maxConnectionsPerIp'],
  ['--high-water-mark <bytes>', 'ALPHANET_HIGH_WATER_MARK_BYTES', 'queued bytes per destination before its sources are paused', DEFAULT_HIGH_WATER_MARK_BYTES, 1, 2 ** 31 - 1, 'highWaterMarkBytes'],
  ['--ipv6-prefix-cap <n>', 'ALPHANET_IPV6_PREFIX_CAP', 'virtual IPs one IPv6 prefix (--ipv6-prefix) of real IPs may hold (0 = no cap)', DEFAULT_IPV6_PREFIX_CAP, 0, 2 ** 32 - 1, 'ipv6PrefixCap'],
  ...BOUNDS(),
];

/** The bounds of docs/RELAY.md "Bounds" (issue 9), in NUMERIC's shape. */
function BOUNDS(): typeof NUMERIC {
  return [
    ['--frame-timeout <ms>', 'ALPHANET_FRAME_TIMEOUT_MS', 'a frame must complete this soon after its first byte', DEFAULT_FRAME_TIMEOUT_MS, 1, 2 ** 31 - 1, 'frameTimeoutMs'],
    ['--max-partial-frame-bytes-per-host <n>', 'ALPHANET_MAX_PARTIAL_FRAME_BYTES_PER_HOST', "bytes of one host's incomplete frames before its connections are not read", DEFAULT_MAX_PARTIAL_FRAME_BYTES_PER_HOST, 1, 2 ** 40, 'maxPartialFrameBytesPerHost'],
    ['--max-partial-frame-bytes <n>', 'ALPHANET_MAX_PARTIAL_FRAME_BYTES', 'bytes of incomplete frames relay-wide before connections holding some are not read', DEFAULT_MAX_PARTIAL_FRAME_BYTES, 1, 2 ** 40, 'maxPartialFrameBytes'],
    ['--max-pairs-per-host <n>', 'ALPHANET_MAX_PAIRS_PER_HOST', 'socket connections one host may have requested', DEFAULT_MAX_PAIRS_PER_HOST, 1, 2 ** 31 - 1, 'maxPairsPerHost'],
    ['--max-pairs <n>', 'ALPHANET_MAX_PAIRS', 'socket connections relay-wide', DEFAULT_MAX_PAIRS, 1, 2 ** 31 - 1, 'maxPairs'],
    ['--max-pending-requests-total <n>', 'ALPHANET_MAX_PENDING_REQUESTS_TOTAL', 'requests waiting on targets relay-wide', DEFAULT_MAX_PENDING_REQUESTS, 1, 2 ** 31 - 1, 'maxPendingRequests'],
    ['--max-bound-ports <n>', 'ALPHANET_MAX_BOUND_PORTS', 'bound ports relay-wide', DEFAULT_MAX_BOUND_PORTS, 1, 2 ** 31 - 1, 'maxBoundPorts'],
    ['--max-queued-bytes <n>', 'ALPHANET_MAX_QUEUED_BYTES', 'bytes queued for all destinations before data is held back', DEFAULT_MAX_QUEUED_BYTES, 1, 2 ** 40, 'maxQueuedBytes'],
    ['--slow-consumer-timeout <ms>', 'ALPHANET_SLOW_CONSUMER_TIMEOUT_MS', 'drop a destination that takes no bytes this long while others wait (0 = the keepalive timeout)', 0, 0, 2 ** 31 - 1, 'slowConsumerTimeoutMs'],
    ['--ipv6-prefix <bits>', 'ALPHANET_IPV6_PREFIX', 'IPv6 clients in one prefix this long count as one host', DEFAULT_IPV6_PREFIX_LENGTH, 1, 128, 'ipv6PrefixLength'],
    ['--max-log-field-chars <n>', 'ALPHANET_MAX_LOG_FIELD_CHARS', 'client-supplied text in logs is cut at this many characters', DEFAULT_MAX_LOG_FIELD_CHARS, 16, 2 ** 31 - 1, 'maxLogFieldChars'],
  ];
}

/** The bound options out of the parsed CLI options, for startRelay. */
function boundOptions(cli: RelayCliOptions): Partial<RelayLimits> {
  return Object.fromEntries(BOUNDS().map(([, , , , , , key]) => [key, cli[key]]));
}

/** Adds the relay's flags to `command` (so another command can carry them too). */
export function addRelayOptions(command: Command): Command {
  command
    .addOption(new Option('--host <host>', 'address to listen on').env('ALPHANET_HOST').default(DEFAULT_HOST))
    .addOption(new Option('--port <port>', 'TCP port (0 = any free port)').env('ALPHANET_PORT').default(DEFAULT_PORT).argParser(integer(0, 65535)))
    .addOption(new Option('--db <file>', 'address store file').env('ALPHANET_DB').default(DEFAULT_DB_PATH))
    .addOption(new Option('--subnet <cidr>', 'subnet virtual IPs come from').env('ALPHANET_SUBNET').default(DEFAULT_SUBNET))
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').env('ALPHANET_LOG_LEVEL').default('info').choices(LOG_LEVELS));
  for (const [flag, env, description, defaultValue, min, max] of NUMERIC) {
    command.addOption(new Option(flag, description).env(env).default(defaultValue).argParser(integer(min, max)));
  }
  return command;
}

/** The relay's own options out of commander's parsed options (unknown keys are left alone). */
export function parseRelayCliOptions(raw: Record<string, unknown>): RelayCliOptions {
  const options = {
    host: String(raw.host),
    port: Number(raw.port),
    db: String(raw.db),
    subnet: String(raw.subnet),
    logLevel: String(raw.logLevel) as LevelWithSilent,
  } as RelayCliOptions;
  const numbers = options as unknown as Record<string, number>;
  for (const [flag, , , , , , key] of NUMERIC) {
    const name = flag.slice(2).split(' ')[0].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    numbers[key] = Number(raw[name]);
  }
  return options;
}

/** What `runRelay` started. */
export interface RunningRelay {
  relay: Relay;
  store: AddressStore;
  logger: Logger;
  /** Closes the relay, then the store. */
  stop(): Promise<void>;
}

export interface RunRelayHooks {
  /** Adds to the relay's options before it starts (e.g. `inspect`). @default undefined */
  relayOptions?: (options: RelayOptions) => RelayOptions | Promise<RelayOptions>;
  /** Runs once the relay listens, before the `listening on` line (e.g. start an HTTP server). @default undefined */
  afterStart?: (running: RunningRelay) => void | Promise<void>;
  /** Runs before the relay closes. @default undefined */
  beforeStop?: (running: RunningRelay) => void | Promise<void>;
  /** Where the single ready line goes. @default process.stdout */
  stdout?: NodeJS.WritableStream;
  /** Called after every committed store write (metrics). @default undefined */
  onStoreWrite?: (info: StoreWriteInfo) => void;
}

/** Opens the store, starts the relay, prints `listening on H:P`. Rejects if the store cannot be opened. */
export async function runRelay(cli: RelayCliOptions, hooks: RunRelayHooks = {}): Promise<RunningRelay> {
  const logger = createLogger({ name: 'relay', level: cli.logLevel });
  const store = await openAddressStore({
    path: cli.db,
    subnet: cli.subnet,
    onWrite: hooks.onStoreWrite,
    ipv6PrefixCap: cli.ipv6PrefixCap,
    ipv6PrefixLength: cli.ipv6PrefixLength,
    onCheckpointError: (error) => logger.error({ err: error }, 'address store checkpoint failed; the journal keeps every entry and the next checkpoint retries'),
  });
  let options: RelayOptions = {
    host: cli.host,
    port: cli.port,
    store,
    logger,
    keepaliveIntervalMs: cli.keepaliveIntervalMs,
    keepaliveTimeoutMs: cli.keepaliveTimeoutMs,
    helloTimeoutMs: cli.helloTimeoutMs,
    requestTimeoutMs: cli.requestTimeoutMs,
    idleTimeoutMs: cli.idleTimeoutMs,
    maxFrameBytes: cli.maxFrameBytes,
    maxSocketsPerClient: cli.maxSocketsPerClient,
    maxPendingRequestsPerClient: cli.maxPendingRequestsPerClient,
    maxClients: cli.maxClients,
    maxConnectionsPerIp: cli.maxConnectionsPerIp,
    highWaterMarkBytes: cli.highWaterMarkBytes,
    ...boundOptions(cli),
  };
  let running: RunningRelay | undefined;
  try {
    if (hooks.relayOptions) options = await hooks.relayOptions(options);
    const relay = await startRelay(options);
    let stopping: Promise<void> | undefined;
    const started: RunningRelay = {
      relay,
      store,
      logger,
      stop: () =>
        (stopping ??= (async () => {
          // Each step runs even when the one before failed, so a failure never leaves the port or the store held.
          try {
            if (hooks.beforeStop) await hooks.beforeStop(started);
          } finally {
            try {
              await relay.close();
            } finally {
              await store.close();
            }
          }
        })()),
    };
    running = started;
    if (hooks.afterStart) await hooks.afterStart(started);
  } catch (error) {
    // A failed step undoes every step before it (HTTP server, relay listener, store), then fails the start.
    try {
      if (running) await running.stop();
      else await store.close();
    } catch (cleanupError) {
      logger.error({ err: cleanupError }, 'closing after a failed start failed');
    }
    throw error;
  }
  (hooks.stdout ?? process.stdout).write(`listening on ${running.relay.host}:${running.relay.port}\n`);
  return running;
}

/** How long a graceful stop may take before the process exits anyway (status 1). */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
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
  const command = new Command('relay').description('run the AlphaNET relay server');
  addRelayOptions(command);
  addObserveOptions(command);
  command.addOption(
    new Option('--stop-timeout <ms>', 'longest a graceful stop may take before the process exits anyway')
      .env('ALPHANET_STOP_TIMEOUT_MS')
      .default(DEFAULT_STOP_TIMEOUT_MS)
      .argParser(integer(1, 2 ** 31 - 1)),
  );
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
  });
  return command;
}
