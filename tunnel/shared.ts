/** Small helpers both tunnels share: argument checks and noticing that the client stopped. */
import type { Client } from '../actors/client/index.ts';
import { ClientError } from '../actors/client/index.ts';
import { TunnelError } from './errors.ts';
import type net from 'node:net';
import type { TunnelLedger, TunnelStats } from './ledger.ts';

/** What expose() and forward() both hand back. */
export interface TunnelHandle {
  /** The port served: virtual for expose, real TCP for forward. */
  readonly port: number;
  /** Connections open now. */
  readonly activeConnections: number;
  /** Counters, including the live connections' bytes so far. */
  stats(): TunnelStats;
  /** Stops listening, resets live connections, logs the summary. Idempotent. */
  close(): Promise<void>;
  /**
   * Stops listening at once, lets the live connections finish for up to `graceMs`, then closes
   * (resetting what is still open). Resolves once closed.
   */
  shutdown(graceMs: number): Promise<void>;
  /** Settles once the tunnel has stopped: close(), the signal, its listener failed or the client stopped. */
  readonly closed: Promise<void>;
  /** Why the tunnel stopped by itself (e.g. ERR_RELAY_LOST), if it did. */
  readonly error: Error | undefined;
}

/** How long `alphanet expose`/`forward` let open connections finish after SIGINT/SIGTERM. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

/**
 * The shutdown both tunnels share: `stopListening()` now, then the ledger's connections get up
 * to `graceMs` to end by themselves, then `close()`.
 */
export async function gracefulShutdown(stopListening: () => void, idle: () => Promise<void>, graceMs: number, close: () => Promise<void>): Promise<void> {
  stopListening();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
  clearTimeout(timer);
  await close();
}

/** The parts of a tunnel that listens on a real TCP port (forward, proxy) its handle is made of. */
export interface ListenerHandleParts {
  /** The real interface and port listened on. */
  host: string;
  port: number;
  server: net.Server;
  ledger: TunnelLedger;
  /** Aborted at shutdown, with `stopReason`: connects still in flight are refused. */
  stopping: AbortController;
  stopReason: string;
  close: () => Promise<void>;
  closed: Promise<void>;
  error: () => Error | undefined;
}

/**
 * The handle forward() and proxy() return, made in one place: live counts read through
 * getters, and a shutdown that stops the listener (and the connects in flight) at once before
 * the grace period. `extra` fields are added as they are.
 */
export function listenerHandle<T extends object>(parts: ListenerHandleParts, extra: T): TunnelHandle & { readonly host: string } & T {
  const { server, ledger, stopping, close } = parts;
  return {
    ...extra,
    host: parts.host,
    port: parts.port,
    get activeConnections() {
      return ledger.active;
    },
    stats: () => ledger.stats(),
    close,
    shutdown: (graceMs: number) =>
      gracefulShutdown(
        () => {
          // No new TCP connections, and none half-opened: connects still in flight are refused.
          server.close();
          stopping.abort(new TunnelError('ERR_TUNNEL_CLOSED', parts.stopReason));
        },
        () => ledger.idle(),
        graceMs,
        close,
      ),
    closed: parts.closed,
    get error() {
      return parts.error();
    },
  };
}

/** Throws ERR_INVALID_ARGUMENT unless `port` is an integer in `min`..65535. */
export function checkPort(port: number, name: string, min = 1): void {
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw new TunnelError('ERR_INVALID_ARGUMENT', `${name} must be an integer ${min}..65535, got ${port}`);
  }
}

/**
 * Calls `onStop` once when the client reaches its final state (closed, or the relay was lost
 * for good), with the client's last error. Returns the unsubscribe function.
 */
export function watchClient(client: Client, onStop: (error: Error) => void): () => void {
  let stopped = false;
  const check = (): boolean => {
    const snapshot = client.actor.getSnapshot();
    if (stopped || snapshot.status !== 'done') return false;
    stopped = true;
    const last = snapshot.context.error;
    onStop(
      last
        ? new ClientError(last.code as ClientError['code'], last.message)
        : new ClientError('ERR_CLIENT_CLOSED', 'the client is closed'),
    );
    return true;
  };
  const subscription = client.actor.subscribe(() => void check());
  // Already over: report it after the caller has finished setting up.
  if (client.actor.getSnapshot().status === 'done') queueMicrotask(check);
  return () => subscription.unsubscribe();
}

/**
 * Wires a tunnel's stop conditions: `close` runs when the client stops for good (after `onLost`
 * records why) or when `signal` aborts, also if it aborted already. Returns the unhook, which
 * close() calls.
 */
export function closeWhen(
  client: Client,
  signal: AbortSignal | undefined,
  close: () => Promise<void>,
  onLost: (error: Error) => void,
): () => void {
  const unwatch = watchClient(client, (lost) => {
    onLost(lost);
    void close();
  });
  const signalOnAbort = (): void => void close();
  signal?.addEventListener('abort', signalOnAbort, { once: true });
  // Aborted while the tunnel was being set up: the listener above will never fire. Closed on
  // the next microtask, after the caller has the unhook this returns (its teardown calls it).
  if (signal?.aborted) queueMicrotask(() => void close());
  return () => {
    unwatch();
    signal?.removeEventListener('abort', signalOnAbort);
  };
}
