/**
 * `runRelay`: the relay command's start and stop sequence (store, relay, hooks such as the HTTP
 * server), and the single `listening on` line. cli/relay-command.ts wraps it in a command.
 */
import net from 'node:net';
import { createLogger, type Logger } from '../actors/logger.ts';
import { startRelay, type Relay, type RelayOptions } from '../actors/relay/index.ts';
import { openAddressStore, type AddressStore, type StoreWriteInfo } from '../storage/index.ts';
import { boundOptions, type RelayCliOptions } from './relay-options.ts';

/**
 * "HOST:PORT" as `--relay` and `connect({ relay })` take it back: an IPv6 host in brackets
 * (`[::1]:1337`), so the port cannot be mistaken for a group of the address.
 */
export function formatHostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
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
    identityMode: cli.identityMode,
    onWrite: hooks.onStoreWrite,
    ipv6PrefixCap: cli.ipv6PrefixCap,
    ipv6PrefixLength: cli.ipv6PrefixLength,
    onCheckpointError: (error) => logger.error({ err: error }, 'address store checkpoint failed; the journal keeps every entry and the next checkpoint retries'),
  });
  let options: RelayOptions = {
    host: cli.host,
    port: cli.port,
    store,
    identityMode: cli.identityMode,
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
  (hooks.stdout ?? process.stdout).write(`listening on ${formatHostPort(running.relay.host, running.relay.port)}\n`);
  return running;
}

