/**
 * A virtual socket (the design text's Socket): bind a port of the client's virtual host, then
 * listen and accept, or connect to another host. Its state is an XState actor.
 */
import type { Logger } from '../logger.ts';
import { createActor } from 'xstate';
import type { Actor, AnyActorRef } from 'xstate';
import type { Clock } from './timer.ts';
import { virtualSocketMachine } from '../../machines/virtual-socket.machine.ts';
import type { VirtualSocketMachineInput } from '../../machines/virtual-socket.machine.ts';
import { stateName, viewOf } from './actor-view.ts';
import type { ActorView } from './actor-view.ts';
import type { VirtualConnection } from './connection.ts';
import { ClientError } from './errors.ts';

/** Largest number of accepted connections waiting for accept() before new ones are denied. */
export const DEFAULT_ACCEPT_BACKLOG = 128;

/** An incoming connection request, for a listener's accept/deny decision. */
export interface ConnectionRequest {
  remoteAddress: string;
  remotePort: number;
  localPort: number;
}

export interface ListenOptions {
  /** Bind this port first when the socket is not bound yet. @default 0 (an ephemeral port) */
  port?: number;
  /**
   * Decides each incoming request: true accepts, false denies (the connector gets
   * ERR_CONNECTION_REFUSED). A throw or rejection denies.
   * @default accept every request
   */
  accept?: (request: ConnectionRequest) => boolean | Promise<boolean>;
  /** Accepted connections held for accept() before further ones are denied. @default DEFAULT_ACCEPT_BACKLOG (128) */
  backlog?: number;
}

export interface SocketConnectOptions {
  /** The target's virtual IP, dotted quad. */
  address: string;
  /** The target's virtual port. */
  port: number;
  /** Cancels the attempt; the promise rejects with the signal's reason. @default none */
  signal?: AbortSignal;
}

/** The socket machine's actor; scripts see it through {@link VirtualSocket.actor}'s view. */
export type VirtualSocketActor = Actor<typeof virtualSocketMachine>;
/** What scripts see of a socket's (or connection's) actor. */
export type VirtualSocketView = ActorView<ReturnType<VirtualSocketActor['getSnapshot']>>;

/**
 * Creates and starts a socket actor as a child of the client's actors' parent, which carries the
 * client's inspector and clock and shares its actor system (machines/children-parent.ts).
 */
export function startSocketActor(host: Pick<SocketHost, 'actorsParent' | 'clock'>, input: VirtualSocketMachineInput): VirtualSocketActor {
  const actor = createActor(virtualSocketMachine, { input, parent: host.actorsParent, ...(host.clock ? { clock: host.clock } : {}) });
  actor.start();
  return actor;
}

/** What a socket needs from its client. */
export interface SocketHost {
  bindPort(socket: VirtualSocket, port: number): Promise<number>;
  unbindPort(socket: VirtualSocket, port: number): void;
  /** Opens a connection; `actor` is the socket's, which the connection drives from then on. */
  openConnection(socket: VirtualSocket, actor: VirtualSocketActor, options: SocketConnectOptions): Promise<VirtualConnection>;
  forget(socket: VirtualSocket): void;
  /** Where a failing `accept` decision is reported. */
  readonly logger: Logger;
  /** The parent of the client's socket actors, with its inspector and clock. */
  readonly actorsParent: AnyActorRef;
  /** The client's clock (connect()'s `clock` option), undefined for real time. */
  readonly clock: Clock | undefined;
}

/**
 * Made by `client.socket()`.
 *
 * @example
 * ```ts
 * const server = client.socket();
 * await server.listen({ port: 7, accept: (req) => req.remoteAddress !== '10.0.0.9' });
 * for await (const conn of server) void conn.duplex().pipe(conn.duplex());
 * ```
 */
export class VirtualSocket {
  /**
   * The socket's state machine, read-only: `actor.getSnapshot()`, `actor.subscribe()`. Only the
   * client sends it events.
   */
  readonly actor: VirtualSocketView;
  readonly #actor: VirtualSocketActor;
  #host: SocketHost;
  #decide: (request: ConnectionRequest) => boolean | Promise<boolean> = () => true;
  #backlog = DEFAULT_ACCEPT_BACKLOG;
  #queue: VirtualConnection[] = [];
  #waiters: Array<{ resolve: (c: VirtualConnection) => void; reject: (e: Error) => void }> = [];
  #error: ClientError | undefined;
  #connection: VirtualConnection | undefined;

  /** Use `client.socket()`. */
  constructor(host: SocketHost) {
    this.#host = host;
    this.#actor = startSocketActor(host, {});
    this.actor = viewOf(this.#actor);
  }

  /**
   * The state's full name: idle, binding, bound, listening, connecting, closed, …; a connected
   * socket's includes its half-close state (connected.open, connected.writeEnded, …).
   */
  get state(): string {
    return stateName(this.#actor.getSnapshot().value);
  }

  /** The bound local port (0 before bind). */
  get port(): number {
    return this.#actor.getSnapshot().context.port;
  }

  /**
   * Reserves a port of this client's virtual host at the relay (BindRequest).
   * Resolves with the port (an ephemeral one for 0). Rejects with ERR_ADDRESS_IN_USE,
   * ERR_SOCKET_LIMIT, ERR_NO_FREE_PORT, ERR_TIMEOUT or ERR_RELAY_LOST.
   */
  async bind(port = 0): Promise<number> {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ClientError('ERR_INVALID_ARGUMENT', `port must be an integer 0..65535, got ${port}`);
    }
    if (this.state !== 'idle') throw new ClientError('ERR_SOCKET_STATE', `cannot bind a socket that is ${this.state}`);
    this.#actor.send({ type: 'socket.bind' });
    try {
      const bound = await this.#host.bindPort(this, port);
      this.#actor.send({ type: 'socket.bound', port: bound });
      return bound;
    } catch (error) {
      const e = error as ClientError;
      this.#actor.send({ type: 'socket.bind.failed', code: e.code, message: e.message });
      throw error;
    }
  }

  /** Starts listening (local: the relay learns of it when asked, docs/PROTOCOL.md §5). */
  async listen(options: ListenOptions = {}): Promise<void> {
    if (this.state === 'idle') await this.bind(options.port ?? 0);
    if (this.state !== 'bound') throw new ClientError('ERR_SOCKET_STATE', `cannot listen on a socket that is ${this.state}`);
    if (options.accept) this.#decide = options.accept;
    if (options.backlog !== undefined) this.#backlog = options.backlog;
    this.#actor.send({ type: 'socket.listen' });
  }

  /** True while incoming requests should be answered Listening. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  /**
   * The next accepted connection. Rejects with the socket's error when it closes.
   */
  accept(options: { signal?: AbortSignal } = {}): Promise<VirtualConnection> {
    const next = this.#queue.shift();
    if (next) return Promise.resolve(next);
    if (this.state === 'closed') {
      return Promise.reject(this.#error ?? new ClientError('ERR_SOCKET_STATE', 'the socket is closed'));
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (c: VirtualConnection) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(c);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Accepted connections until the socket closes (then the loop ends without an error). */
  async *[Symbol.asyncIterator](): AsyncIterator<VirtualConnection> {
    for (;;) {
      let conn: VirtualConnection;
      try {
        conn = await this.accept();
      } catch (error) {
        if (this.state === 'closed' && this.#error === undefined) return;
        throw error;
      }
      yield conn;
    }
  }

  /**
   * Connects to a listening socket of another (or the same) virtual host. Binds an ephemeral
   * port first when the socket is not bound (docs/PROTOCOL.md §5). Rejects with
   * ERR_TARGET_OFFLINE, ERR_NOT_LISTENING, ERR_CONNECTION_REFUSED, ERR_TIMEOUT or ERR_RELAY_LOST.
   */
  async connect(options: SocketConnectOptions): Promise<VirtualConnection> {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new ClientError('ERR_INVALID_ARGUMENT', `port must be an integer 1..65535, got ${options.port}`);
    }
    if (this.state === 'idle') await this.bind(0);
    if (this.state !== 'bound') throw new ClientError('ERR_SOCKET_STATE', `cannot connect a socket that is ${this.state}`);
    this.#actor.send({ type: 'socket.connect', remote: `${options.address}:${options.port}` });
    try {
      // The client moved the actor to connected when the target accepted (before any data).
      const connection = await this.#host.openConnection(this, this.#actor, options);
      this.#connection = connection;
      return connection;
    } catch (error) {
      const e = error as ClientError;
      this.#actor.send({ type: 'socket.connect.failed', code: e.code ?? 'ERR_ABORTED', message: e.message });
      this.#host.unbindPort(this, this.port);
      this.#host.forget(this);
      throw error;
    }
  }

  /** Stops listening (or closes the connection) and releases the port. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.#connection) {
      this.#connection.close();
      return;
    }
    this.#shut(undefined);
  }

  /** @internal Offers an incoming request; resolves true when accepted and queued. */
  async offer(request: ConnectionRequest): Promise<boolean> {
    if (this.#queue.length >= this.#backlog) return false;
    try {
      return (await this.#decide(request)) === true && this.listening;
    } catch (error) {
      // A decision that throws denies, as the safe answer; the error is the user's to see.
      this.#host.logger.error({ err: error, port: this.port, from: request }, 'accept decision threw; the connection is denied');
      return false;
    }
  }

  /** @internal Hands an accepted connection to accept(). */
  deliver(connection: VirtualConnection): void {
    // Closed while the connection was being set up (an e2e handshake takes round trips): nothing
    // will accept it, so it is closed, not queued where no one reads, with its peer left waiting.
    if (this.state === 'closed') {
      connection.close();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(connection);
    else this.#queue.push(connection);
  }

  /** @internal The relay was lost and the client will reconnect: the port must be bound again. */
  suspend(): void {
    this.#actor.send({ type: 'socket.suspend' });
  }

  /** @internal The client claimed the port again after reconnecting. */
  rebound(): void {
    this.#actor.send({ type: 'socket.bound', port: this.port });
  }

  /** @internal The port could not be claimed again after reconnecting: the socket closes with `error`. */
  rebindFailed(error: ClientError): void {
    this.#actor.send({ type: 'socket.bind.failed', code: error.code, message: error.message });
    this.shut(error);
  }

  /** @internal Closes with `error` (relay lost, rebind failed) or cleanly. */
  shut(error: ClientError | undefined): void {
    if (this.#connection && !this.#connection.closed) {
      if (error) this.#connection.fail(error);
      else this.#connection.close();
    }
    this.#shut(error);
  }

  #shut(error: ClientError | undefined): void {
    if (this.state === 'closed') return;
    this.#error = error;
    const port = this.port;
    this.#actor.send({ type: 'socket.close', ...(error ? { code: error.code, message: error.message } : {}) });
    if (port !== 0) this.#host.unbindPort(this, port);
    this.#host.forget(this);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(error ?? new ClientError('ERR_SOCKET_STATE', 'the socket is closed'));
    // Accepted but never taken: nobody will read them.
    for (const c of this.#queue.splice(0)) c.close();
  }
}
