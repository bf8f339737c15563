/**
 * `runRelay`: the relay command's start and stop sequence (store, relay, hooks such as the HTTP
 * server), and the single `listening on` line. cli/relay-command.ts wraps it in a command.
 */
import net from 'node:net';
import { createLogger, type Logger } from '../actors/logger.ts';
import { startRelay, type Relay, type RelayOptions } from '../actors/relay/index.ts';
import { joinCluster } from '../actors/relay/cluster/index.ts';
import { openAddressStore, type AddressStore, type StoreWriteInfo } from '../storage/index.ts';
import { boundOptions, type RelayCliOptions } from './relay-options.ts';
import { chooseRelayTls, describeTransport, describeWebSocket, type TlsFiles } from './relay-tls.ts';

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
  /** The key and certificate files it serves, to read again on SIGHUP; undefined with --plaintext. */
  tlsFiles: TlsFiles | undefined;
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

/**
 * Opens the store, starts the relay, prints `listening on H:P (TLS, fingerprint sha256:…)` (or
 * `(plaintext)`). Rejects if the store, the TLS files or a port cannot be had.
 */
export async function runRelay(cli: RelayCliOptions, hooks: RunRelayHooks = {}): Promise<RunningRelay> {
  const logger = createLogger({ name: 'relay', level: cli.logLevel });
  // With --cluster the address map is the cluster's, in NATS (docs/CLUSTER.md); else the lowdb store.
  // Its bucket records the identity mode, and a relay asking for the other one is refused
  // (ERR_IDENTITY_MODE_MISMATCH) before it listens, as with a lowdb store of the other mode.
  const cluster =
    cli.cluster === undefined
      ? undefined
      : await joinCluster({ url: cli.cluster, relayId: cli.relayId, subnet: cli.subnet, ipv6PrefixCap: cli.ipv6PrefixCap, ipv6PrefixLength: cli.ipv6PrefixLength, identityMode: cli.identityMode, logger });
  const closeStore = (): Promise<void> => (cluster ? cluster.close() : store.close());
  const store: AddressStore = cluster?.store ?? await openAddressStore({
    path: cli.db,
    subnet: cli.subnet,
    identityMode: cli.identityMode,
    onWrite: hooks.onStoreWrite,
    ipv6PrefixCap: cli.ipv6PrefixCap,
    ipv6PrefixLength: cli.ipv6PrefixLength,
    onCheckpointError: (error) => logger.error({ err: error }, 'address store checkpoint failed; the journal keeps every entry and the next checkpoint retries'),
  });
  let options: RelayOptions;
  let tlsFiles: TlsFiles | undefined;
  try {
    const chosen = await chooseRelayTls(cli);
    tlsFiles = chosen.files;
    options = { ...(chosen.tls ? { tls: chosen.tls } : {}), ...(chosen.plaintextPort === undefined ? {} : { plaintextPort: chosen.plaintextPort }) } as RelayOptions;
  } catch (error) {
    await store.close();
    throw error;
  }
  options = {
    ...options,
    host: cli.host,
    port: cli.port,
    store,
    identityMode: cli.identityMode,
    logger,
    keepaliveIntervalMs: cli.keepaliveIntervalMs,
    keepaliveTimeoutMs: cli.keepaliveTimeoutMs,
    helloTimeoutMs: cli.helloTimeoutMs,
    tlsHandshakeTimeoutMs: cli.tlsHandshakeTimeoutMs,
    requestTimeoutMs: cli.requestTimeoutMs,
    idleTimeoutMs: cli.idleTimeoutMs,
    maxFrameBytes: cli.maxFrameBytes,
    maxSocketsPerClient: cli.maxSocketsPerClient,
    maxPendingRequestsPerClient: cli.maxPendingRequestsPerClient,
    maxClients: cli.maxClients,
    maxConnectionsPerIp: cli.maxConnectionsPerIp,
    highWaterMarkBytes: cli.highWaterMarkBytes,
    ...boundOptions(cli),
    ...(cli.wsPort === undefined ? {} : { websocket: { port: cli.wsPort, host: cli.wsHost, trustProxy: cli.wsTrustProxy, allowOrigins: cli.wsAllowOrigin, plaintext: cli.wsPlaintext } }),
    ...(cluster ? { remote: cluster.routing } : {}),
  };
  let running: RunningRelay | undefined;
  try {
    if (hooks.relayOptions) options = await hooks.relayOptions(options);
    const relay = await startRelay(options);
    cluster?.attach(relay);
    let stopping: Promise<void> | undefined;
    const started: RunningRelay = {
      relay,
      store,
      logger,
      tlsFiles,
      stop: () =>
        (stopping ??= (async () => {
          // Each step runs even when the one before failed, so a failure never leaves the port or the store held.
          try {
            if (hooks.beforeStop) await hooks.beforeStop(started);
          } finally {
            try {
              await relay.close();
            } finally {
              await closeStore();
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
      else await closeStore();
    } catch (cleanupError) {
      logger.error({ err: cleanupError }, 'closing after a failed start failed');
    }
    throw error;
  }
  (hooks.stdout ?? process.stdout).write(`listening on ${formatHostPort(running.relay.host, running.relay.port)} (${describeTransport(running.relay, formatHostPort)})\n`);
  const websocket = running.relay.websocket;
  if (websocket !== undefined) (hooks.stdout ?? process.stdout).write(`websocket on ${websocket.url} (${describeWebSocket(running.relay)})\n`);
  return running;
}

