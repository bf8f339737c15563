/**
 * The client actor (the design text's TcpClient plus its SocketManager): one relay session at a
 * time, the client's virtual sockets and connections, and the answers to requests the relay
 * forwards from other clients. `connect()` is the entry point.
 */
import { createActor, fromPromise } from 'xstate';
import { childrenParentLogic } from '../../machines/children-parent.ts';
import type { Actor, InspectionEvent } from 'xstate';
import type { Clock } from './timer.ts';
import {
  BindStatus,
  ConnectionStatus,
  FailureReason,
  PacketType,
  SocketStatus,
  ARBITRARY_DATA_HEADER_BYTES,
  decodeFrame,
  encodePacket,
  formatIpv4,
  parseIpv4,
  readConnectionId,
} from '../../protocol/index.ts';
import type { Packet } from '../../protocol/index.ts';
import { clientMachine } from '../../machines/client.machine.ts';
import type { DialResult, ReconnectPolicy } from '../../machines/client.machine.ts';
import type { Logger } from '../logger.ts';
import { stateName, viewOf } from './actor-view.ts';
import type { ActorView } from './actor-view.ts';
import { VirtualConnection } from './connection.ts';
import type { ConnectionHost } from './connection.ts';
import {
  ClientError,
  ConnectionRefusedError,
  NotListeningError,
  RelayLostError,
  TargetOfflineError,
  TimeoutError,
} from './errors.ts';
import { isRelayUrl, parseRelayAddress, parseRelayUrl } from './relay-address.ts';
import { dialSession } from './session.ts';
import type { RelayTrustOptions } from './relay-trust.ts';
import type { AnswerPacket, HelloIdentity, RelaySession } from './session.ts';
import { VirtualSocket, startSocketActor } from './virtual-socket.ts';
import type { ClientIdentity, ClientPlatform, PeerPins } from './platform.ts';
import { DatagramTable } from './datagram-table.ts';
import type { DatagramOptions, DatagramSocket } from './datagram.ts';
import type { ListenOptions, SocketConnectOptions, SocketHost, VirtualSocketActor } from './virtual-socket.ts';

/** Relay used when neither options nor ALPHANET_RELAY name one. */
export const DEFAULT_RELAY = '127.0.0.1:1337';
export { parseRelayAddress, parseRelayUrl };
/**
 * Time a request waits for the relay's answer. Above the relay's own 10 s target timeout, so
 * a target that does not answer is reported by the relay (RequestFailed Timeout) first.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Time allowed for TCP connect plus Hello → VirtualIP. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Reconnection defaults, used for `reconnect: true` and for fields a policy leaves out. */
export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  factor: 2,
  maxAttempts: Number.POSITIVE_INFINITY,
};

export type { ReconnectPolicy };

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * The relay as "host:port" (TCP), or a WebSocket URL (`ws://host:port/alphanet`, `wss://…`).
   * @default process.env.ALPHANET_RELAY, else "127.0.0.1:1337" (in Node); in a browser, the
   * WebSocket of the relay that served the page (`ws://` + `location.host` + `/alphanet`)
   */
  relay?: string;
  /**
   * The relay's WebSocket URL (`ws://host:port/alphanet`); overrides `relay`, `host` and `port`.
   * In Node it is dialled with the `ws` package, in a browser with the global WebSocket.
   * @default none (TCP to `relay`)
   */
  url?: string;
  /** The relay's host; overrides `relay`. @default from `relay` */
  host?: string;
  /** The relay's port; overrides `relay`. @default from `relay` */
  port?: number;
  /** The real source address to connect from (it decides the virtual IP). @default chosen by the OS */
  localAddress?: string;
  /**
   * TLS 1.3 to the relay, its key trusted as ssh trusts a host key: `true` pins the relay's
   * fingerprint on first use in the known-relays file and refuses a changed one
   * (ERR_RELAY_FINGERPRINT_CHANGED); an object says which fingerprint or file (relay-trust.ts).
   * `false` is plain TCP. The default follows `startRelay()`, which serves plain TCP unless given a
   * certificate; the CLI (`alphanet relay`, `npm start`, every client command) uses TLS unless
   * `--plaintext` (docs/CLIENT.md "TLS and trust on first use").
   * With a `wss://` URL (Node) the connection is TLS whatever this says, and the relay's key is
   * pinned the same way unless `false`, which leaves the check to the system's certificate
   * authorities (a relay behind a proxy with a real certificate). A browser always uses its own
   * authorities. A `ws://` URL takes no TLS.
   * @default false (plain TCP); pinned for a wss:// URL
   */
  tls?: boolean | RelayTrustOptions;
  /** Cancels connecting; connect() rejects with the signal's reason. @default none */
  signal?: AbortSignal;
  /** Time each request (bind, connect) waits for an answer, in ms. @default DEFAULT_REQUEST_TIMEOUT_MS (15 s) */
  requestTimeoutMs?: number;
  /** Time for TCP connect and Hello, in ms. @default DEFAULT_CONNECT_TIMEOUT_MS (10 s) */
  connectTimeoutMs?: number;
  /**
   * Reconnect with backoff after losing the relay (true for the defaults). The client keeps its
   * virtual IP (same source address) and its bound and listening sockets bind again.
   * @default false
   */
  reconnect?: boolean | Partial<ReconnectPolicy>;
  /** Observer for every actor of this client (e.g. `@statelyai/inspect`'s `inspect`). @default none */
  inspect?: (event: InspectionEvent) => void;
  /** Logger for diagnostics. @default a silent logger */
  logger?: Logger;
  /**
   * The clock of every timer of this client: its actors' delays (reconnection backoff) via
   * `createActor(machine, { clock })`, and its own timeouts (keepalive silence, requests,
   * connecting). Pass xstate's `SimulatedClock` to test timeouts without waiting.
   * @default real time (`setTimeout`/`clearTimeout`)
   */
  clock?: Clock;
  /**
   * The identity key proved at Hello (docs/PROTOCOL.md §2a) and announced to peers: a file path
   * (created, mode 0600, when missing), an `Identity` (e.g. `generateIdentity()`), or
   * `false` to prove none (Hello version 1, as before identities; a relay in
   * `--identity-mode key` refuses such a client). Node only: a browser client has no identity
   * and says Hello version 1 (docs/CLIENT.md "From a browser").
   * @default the file `identity` in the config directory ($ALPHANET_CONFIG_DIR, else
   * $XDG_CONFIG_HOME/alphanet, else ~/.config/alphanet)
   */
  identity?: string | ClientIdentity | false;
  /**
   * Encrypt every virtual connection end to end (the Noise protocol over the connection, keys checked
   * against the relay's PeerKey and the pins; docs/SECURITY.md). Both ends must agree: an end
   * with it on fails a connection to an end with it off (ERR_E2E_MISMATCH on both ends).
   * @default true, unless `identity: false` (nothing to encrypt with), under Deno, or in a browser
   */
  e2e?: boolean;
  /**
   * The pins file (trust on first use of each virtual IP's key): a path, or false for none.
   * @default `known-peers` beside the identity file; none for an identity given in memory
   */
  knownPeers?: string | false;
}

/** The client machine's actor; scripts see it through {@link Client.actor}'s view. */
type ClientActor = Actor<typeof clientMachine>;
/** What scripts see of the client's actor. */
export type ClientView = ActorView<ReturnType<ClientActor['getSnapshot']>>;

/**
 * The trust a dial checks (relay-trust.ts), from `tls` and the URL: over TCP, TLS only when asked;
 * for a wss:// URL in Node, the pin unless `tls: false` (then the platform's certificate
 * authorities judge, as in a browser); a ws:// URL is plain, and asking TLS of it is refused.
 */
function relayTrustFor(option: ConnectOptions['tls'], url: string | undefined): RelayTrustOptions | undefined {
  if (url === undefined) return option === true ? {} : option || undefined;
  if (/^wss:/i.test(url)) return option === false ? undefined : option === true || option === undefined ? {} : option;
  if (option) throw new ClientError('ERR_INVALID_ARGUMENT', `${url} is plain WebSocket: for TLS to the relay give its wss:// URL, or leave out tls`);
  return undefined;
}

function describeFailure(reason: number, target: string): ClientError {
  switch (reason) {
    case FailureReason.Offline:
      return new TargetOfflineError(`${target} is offline: no client with that virtual IP is connected to the relay`);
    case FailureReason.TargetDisconnected:
      return new TargetOfflineError(`${target} went offline before answering`);
    case FailureReason.Timeout:
      return new TimeoutError(`${target} did not answer within the relay's request timeout`);
    case FailureReason.NotBound:
      return new NotListeningError('not-bound', `nothing listens at ${target}: the port is not bound`);
    case FailureReason.LimitReached:
      return new ClientError('ERR_REQUEST_FAILED', `the relay refused the request to ${target}: too many requests in flight`);
    default:
      return new ClientError('ERR_REQUEST_FAILED', `the relay refused the request to ${target} as invalid (reason ${reason})`);
  }
}

/**
 * A client connected to a relay. Obtain it from {@link connect}.
 */
export class Client {
  /**
   * The client's state machine, read-only: connecting → connected (→ reconnecting) → closed.
   * `actor.getSnapshot()`, `actor.subscribe()`; only the client sends it events.
   */
  readonly actor: ClientView;
  readonly #actor: ClientActor;
  readonly #options: Required<Pick<ConnectOptions, 'requestTimeoutMs' | 'connectTimeoutMs'>> & ConnectOptions;
  readonly #host: string;
  readonly #port: number;
  /** The WebSocket URL when the relay is reached over WebSocket. */
  readonly #url: string | undefined;
  readonly #platform: ClientPlatform;
  readonly #logger: Logger;
  #session: RelaySession | undefined;
  #virtualIp = 0;
  #sockets = new Set<VirtualSocket>();
  #ports = new Map<number, VirtualSocket>();
  #connections = new Map<number, VirtualConnection>();
  #lostError: ClientError | undefined;
  /** Settles once our own close() has let the relay connection finish (see close()). */
  #closing: Promise<void> | undefined;
  #dialError: unknown;
  #everConnected = false;
  readonly #socketHost: SocketHost;
  readonly #connectionHost: ConnectionHost;
  readonly #datagrams: DatagramTable;
  readonly #identity: ClientIdentity | undefined;
  readonly #e2e: boolean;
  /** What each dial checks of the relay's key (relayTrustFor), decided once. */
  readonly #trust: RelayTrustOptions | undefined;
  readonly #pins: PeerPins | undefined;
  /** Peers' proven keys by connection id, from PeerKey until their connection is made (§2a). */
  readonly #peerKeys = new Map<number, Uint8Array>();

  /**
   * Use {@link connect}. `platform` is given by the entry point (connect.ts, browser.ts); so is
   * `identity`, loaded by the platform's identity hooks (Node only: a browser has none).
   */
  constructor(options: ConnectOptions, platform: ClientPlatform, identity?: ClientIdentity) {
    this.#platform = platform;
    if (identity !== undefined && platform.identity === undefined) {
      throw new ClientError('ERR_UNSUPPORTED', 'identity keys need Node (node:crypto): this platform has none');
    }
    this.#identity = identity;
    if (options.e2e === true && identity === undefined) {
      throw new ClientError('ERR_INVALID_ARGUMENT', 'e2e needs an identity key: leave out identity: false, or pass e2e: false');
    }
    // Deno's node:tls does not run TLS over a JavaScript stream (the handshake never completes), so
    // there e2e is off unless asked for (docs/CLIENT.md "Installing it, and Deno").
    this.#e2e = identity !== undefined && (options.e2e ?? platform.identity?.e2eByDefault ?? false);
    this.#pins = platform.identity?.knownPeers(options.knownPeers, identity);
    const named = options.url ?? (options.host !== undefined && options.port !== undefined ? undefined : (options.relay ?? platform.defaultRelay()));
    const isUrl = named !== undefined && isRelayUrl(named);
    const relay =
      named === undefined ? { host: options.host!, port: options.port!, url: undefined } : isUrl ? parseRelayUrl(named) : { ...parseRelayAddress(named), url: undefined };
    this.#url = relay.url;
    this.#host = relay.url === undefined ? (options.host ?? relay.host) : relay.host;
    this.#port = relay.url === undefined ? (options.port ?? relay.port) : relay.port;
    this.#trust = relayTrustFor(options.tls, this.#url);
    this.#options = {
      ...options,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    };
    this.#logger = options.logger ?? platform.silentLogger();
    const reconnect =
      options.reconnect === true
        ? DEFAULT_RECONNECT_POLICY
        : options.reconnect
          ? { ...DEFAULT_RECONNECT_POLICY, ...options.reconnect }
          : false;
    this.#socketHost = {
      bindPort: (socket, port) => this.#bindPort(socket, port),
      unbindPort: (socket, port) => this.#unbindPort(socket, port),
      openConnection: (socket, actor, o) => this.#openConnection(socket, actor, o),
      forget: (socket) => this.#sockets.delete(socket),
      logger: this.#logger,
      // One actor system for every socket and connection actor of this client: a root actor each
      // made a system per connect (machines/children-parent.ts).
      actorsParent: createActor(childrenParentLogic, { inspect: options.inspect, ...(options.clock ? { clock: options.clock } : {}) }).start(),
      clock: options.clock,
    };
    const client = this;
    this.#connectionHost = {
      write: (frame) => client.#session?.write(frame) ?? false,
      writeData: (head, payload, flushed) => {
        if (client.#session) return client.#session.writeData(head, payload, flushed);
        flushed?.();
        return false;
      },
      writePieces: (pieces) => client.#session?.writeFrames(pieces) ?? false,
      get unflushedBytes() {
        return client.#session?.unflushedBytes ?? 0;
      },
      drained: () => client.#session?.drained() ?? Promise.resolve(),
      get maxPayloadBytes() {
        // Conservative: frame header and connection id both counted against the limit.
        return (client.#session?.maxFrameBytes ?? 1024) - ARBITRARY_DATA_HEADER_BYTES;
      },
      release: (connection) => client.#release(connection),
      toDuplex: platform.toDuplex,
    };
    this.#datagrams = new DatagramTable({
      session: () => client.#session,
      requireSession: () => client.#requireSession(),
      requestTimeoutMs: this.#options.requestTimeoutMs,
    });
    const machine = clientMachine.provide({
      actors: { dialRelay: fromPromise<DialResult>(({ signal }) => this.#dial(signal)) },
      actions: {
        announceConnected: () => this.#onConnected(),
        announceLost: (_, params) => this.#onLost(params.willReconnect),
        announceClosed: () => this.#onClosed(),
      },
    });
    this.#actor = createActor(machine, { input: { reconnect }, inspect: options.inspect, ...(options.clock ? { clock: options.clock } : {}) });
    this.actor = viewOf(this.#actor);
  }

  /** The virtual IP as a dotted quad (kept while reconnecting). */
  get virtualIp(): string {
    return formatIpv4(this.#virtualIp);
  }

  /** This client's Ed25519 public key (32 raw bytes), or undefined with `identity: false` (and in a browser). */
  get publicKey(): Uint8Array | undefined {
    return this.#identity?.publicKey;
  }

  /** This client's public key as unpadded base64url, as peers and the relay's store show it. */
  get fingerprint(): string | undefined {
    return this.#identity?.fingerprint;
  }

  /** The relay this client talks to, "host:port" (TCP) or its WebSocket URL. */
  get relay(): string {
    return this.#url ?? `${this.#host}:${this.#port}`;
  }

  /** The state's full name: connecting, connected, reconnecting.waiting, reconnecting.dialing or closed. */
  get state(): string {
    return stateName(this.#actor.getSnapshot().value);
  }

  /** A new virtual socket in state idle. */
  socket(): VirtualSocket {
    if (this.state === 'closed') throw new ClientError('ERR_CLIENT_CLOSED', 'the client is closed');
    const socket = new VirtualSocket(this.#socketHost);
    this.#sockets.add(socket);
    return socket;
  }

  /**
   * Listens on `port` in one step (bind + listen).
   * @example
   * ```ts
   * const server = await client.listen(7);
   * for await (const conn of server) conn.duplex().pipe(conn.duplex());
   * ```
   */
  async listen(port: number, options: Omit<ListenOptions, 'port'> = {}): Promise<VirtualSocket> {
    const socket = this.socket();
    await socket.listen({ ...options, port });
    return socket;
  }

  /**
   * Opens a connection from a fresh socket with an ephemeral port.
   * @example
   * ```ts
   * const conn = await client.connect({ address: '10.0.0.2', port: 7 });
   * ```
   */
  connect(options: SocketConnectOptions): Promise<VirtualConnection> {
    return this.socket().connect(options);
  }

  /**
   * Binds datagram port `port` (0: an ephemeral one) and resolves with its socket
   * (docs/CLIENT.md "Datagrams").
   * @example
   * ```ts
   * const sock = await client.datagram(7777);
   * sock.send('10.0.0.2', 7777, 'hello');
   * for await (const { address, port, bytes } of sock) console.log(address, port, bytes);
   * ```
   */
  datagram(port = 0, options: DatagramOptions = {}): Promise<DatagramSocket> {
    return this.#datagrams.open(port, options);
  }

  /**
   * Closes every socket and the relay connection. What was already sent (a send() that
   * resolved, an end()) still reaches the relay first; resolves once the connection is closed.
   */
  async close(): Promise<void> {
    if (this.#actor.getSnapshot().status === 'active') this.#actor.send({ type: 'client.close' });
    await this.#closing;
  }

  /** @internal Starts the actor and resolves when the first dial settles (connect() calls it). */
  async start(signal: AbortSignal | undefined): Promise<this> {
    this.#actor.start();
    const onAbort = (): void => void this.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        const check = (): boolean => {
          const snapshot = this.#actor.getSnapshot();
          if (snapshot.matches('connected')) resolve();
          else if (snapshot.status === 'done') reject(signal?.aborted ? signal.reason : this.#dialError);
          else return false;
          return true;
        };
        if (check()) return;
        const sub = this.#actor.subscribe(() => {
          if (check()) sub.unsubscribe();
        });
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return this;
  }

  async #dial(signal: AbortSignal): Promise<DialResult> {
    try {
      const { session, buffered } = await dialSession({
        host: this.#host,
        port: this.#port,
        url: this.#url,
        open: this.#platform.open,
        localAddress: this.#options.localAddress,
        timeoutMs: this.#options.connectTimeoutMs,
        signal,
        logger: this.#logger,
        clock: this.#options.clock,
        tls: this.#trust,
        identity: this.#helloIdentity(),
      });
      if (signal.aborted) {
        session.close();
        throw signal.reason;
      }
      this.#session = session;
      this.#virtualIp = session.virtualIp;
      session.attach(
        {
          onFrame: (type, frame) => this.#onFrame(type, frame),
          onData: (connectionId, payload) => this.#connections.get(connectionId)?.receiveData(payload),
          onLost: (error) => {
            if (this.#session !== session) return;
            this.#session = undefined;
            this.#lostError = error;
            if (this.#actor.getSnapshot().status === 'active') {
              this.#actor.send({ type: 'relay.lost', code: error.code, message: error.message });
            }
          },
        },
        buffered,
      );
      // Frames that came with VirtualIP can end the session (the relay's Error, its close): the
      // dial failed then, not a connection to report as up with no session beneath it.
      if (session.lost) throw session.lost;
      // Connected again: the loss before is over, and is no one's error from now on.
      this.#lostError = undefined;
      return { virtualIp: formatIpv4(session.virtualIp) };
    } catch (error) {
      this.#dialError = error;
      throw error;
    }
  }

  #onConnected(): void {
    const again = this.#everConnected;
    this.#everConnected = true;
    this.#logger.info({ virtualIp: this.virtualIp, relay: this.relay }, again ? 'reconnected to relay' : 'connected to relay');
    if (!again) return;
    this.#datagrams.reconnected();
    // Claim the ports again so listeners listen under the same address.
    for (const socket of this.#sockets) {
      const state = socket.state;
      if (state !== 'rebinding' && state !== 'relistening') continue;
      const port = socket.port;
      this.#requestBind(port).then(
        () => socket.rebound(),
        (error: ClientError) => {
          this.#ports.delete(port);
          socket.rebindFailed(error);
        },
      );
    }
  }

  #onLost(willReconnect: boolean): void {
    const error = this.#lostError ?? new RelayLostError('the connection to the relay was lost');
    this.#logger.warn({ err: error, willReconnect }, 'lost the relay');
    this.#datagrams.lost(willReconnect, error);
    for (const connection of [...this.#connections.values()]) connection.fail(error);
    this.#connections.clear();
    for (const socket of [...this.#sockets]) {
      const state = socket.state;
      if (willReconnect && (state === 'bound' || state === 'listening')) socket.suspend();
      else if (state !== 'connecting' && state !== 'binding') socket.shut(error);
    }
  }

  #onClosed(): void {
    // Settled once the session has ended below; set first, so a close() called from a listener
    // woken here (a connection's 'close') waits for it too.
    let ended!: (ending: Promise<void>) => void;
    this.#closing = new Promise<void>((resolve) => (ended = (ending) => void ending.then(resolve, resolve)));
    const error = this.#lostError ?? new ClientError('ERR_CLIENT_CLOSED', 'the client is closed');
    for (const connection of [...this.#connections.values()]) connection.fail(error);
    this.#connections.clear();
    for (const socket of [...this.#sockets]) socket.shut(this.#lostError);
    this.#datagrams.closed(this.#lostError);
    const session = this.#session;
    this.#session = undefined;
    // A session still held is a live one (a lost one is dropped when it is lost): what we wrote
    // to it leaves first.
    ended(session === undefined ? Promise.resolve() : session.end(new ClientError('ERR_CLIENT_CLOSED', 'the client is closed')));
  }

  #requireSession(): RelaySession {
    if (this.#session) return this.#session;
    if (this.state === 'closed') throw new ClientError('ERR_CLIENT_CLOSED', 'the client is closed');
    throw this.#lostError ?? new RelayLostError('not connected to the relay');
  }

  async #requestBind(port: number): Promise<number> {
    const session = this.#requireSession();
    const answer = await session.request(
      (requestId) => ({ type: PacketType.BindRequest, requestId, port }),
      this.#options.requestTimeoutMs,
      `bind ${port}`,
    );
    if (answer.type !== PacketType.BindResponse) throw new ClientError('ERR_REQUEST_FAILED', `bind ${port}: unexpected answer`);
    switch (answer.status) {
      case BindStatus.Ok:
        return answer.port;
      case BindStatus.AddressInUse:
        throw new ClientError('ERR_ADDRESS_IN_USE', `port ${port} of ${this.virtualIp} is already bound`);
      case BindStatus.LimitReached:
        throw new ClientError('ERR_SOCKET_LIMIT', `bind ${port}: this connection holds the relay's maximum of sockets`);
      default:
        throw new ClientError('ERR_NO_FREE_PORT', `bind ${port}: the relay has no free ephemeral port`);
    }
  }

  async #bindPort(socket: VirtualSocket, port: number): Promise<number> {
    const bound = await this.#requestBind(port);
    this.#ports.set(bound, socket);
    return bound;
  }

  #unbindPort(socket: VirtualSocket, port: number): void {
    if (port === 0 || this.#ports.get(port) !== socket) return;
    this.#ports.delete(port);
    this.#session?.write(encodePacket({ type: PacketType.Unbind, port }));
  }

  async #openConnection(socket: VirtualSocket, actor: VirtualSocketActor, options: SocketConnectOptions): Promise<VirtualConnection> {
    const ip = parseIpv4(options.address);
    if (ip === undefined) throw new ClientError('ERR_INVALID_ARGUMENT', `not a virtual IPv4 address: "${options.address}"`);
    const { signal } = options;
    signal?.throwIfAborted();
    const target = `${options.address}:${options.port}`;
    const source = { ip: this.#virtualIp, port: socket.port };
    const destination = { ip, port: options.port };
    const timeout = this.#options.requestTimeoutMs;
    let connection: VirtualConnection | undefined;
    /** The caller gave up (abort, timeout, failure) before the answer came. */
    let abandoned = false;
    const abortable = <T>(promise: Promise<T>): Promise<T> => {
      if (!signal) return promise;
      return new Promise<T>((resolve, reject) => {
        const onAbort = (): void => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
      });
    };
    try {
      // docs/PROTOCOL.md §6 step 1: is anything listening there?
      const status = await abortable(
        this.#requireSession().request(
          (requestId) => ({ type: PacketType.SocketStatusRequest, requestId, source, destination }),
          timeout,
          `connect to ${target}`,
        ),
      );
      this.#checkAnswer(status, target);
      // Step 2: ask for the connection; an Accepted answer creates it synchronously, before
      // the data the target may send right after accepting is handled.
      const answer = await abortable(
        this.#requireSession().request(
          (requestId) => ({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source, destination }),
          timeout,
          `connect to ${target}`,
          (packet) => {
            if (packet.type === PacketType.SocketConnectionResponse && packet.status === ConnectionStatus.Accepted && abandoned) {
              // Given up (aborted) before the target's answer came: the relay's new pair is closed,
              // not left open with the peer's accepted end waiting on it.
              this.#session?.closeUnwanted(packet.connectionId);
              return;
            }
            if (packet.type === PacketType.SocketConnectionResponse && packet.status === ConnectionStatus.Accepted) {
              // Connected now, not when connect() resumes: data may follow in the same read.
              actor.send({ type: 'socket.connected' });
              connection = new VirtualConnection(this.#connectionHost, actor, packet.connectionId, {
                localAddress: this.virtualIp,
                localPort: socket.port,
                // Normalised (`10.0.0.02` is 10.0.0.2): the e2e prologue and the pin are keyed by it.
                remoteAddress: formatIpv4(ip),
                remotePort: options.port,
                peerKey: this.#takePeerKey(packet.connectionId),
              });
              // Set before any data: the peer's first frame may be in this same read. A peer that
              // encrypts is told it does not match (docs/SECURITY.md "Opting out").
              if (!this.#e2e) connection.expectPlaintextPeer();
              this.#connections.set(packet.connectionId, connection);
            }
          },
        ),
      );
      this.#checkAnswer(answer, target);
      if (connection === undefined) throw new ClientError('ERR_REQUEST_FAILED', `connect to ${target}: no connection id`);
      if (!this.#e2e) return connection;
      return await abortable(this.#secure(connection, 'connector'));
    } catch (error) {
      abandoned = true;
      // Aborted after the target accepted, or its end-to-end handshake failed: close what the relay opened.
      if (connection && !connection.closed) connection.destroy();
      throw error;
    }
  }

  #checkAnswer(answer: AnswerPacket, target: string): void {
    switch (answer.type) {
      case PacketType.RequestFailed:
        throw describeFailure(answer.reason, target);
      case PacketType.SocketStatusResponse:
        if (answer.status === SocketStatus.Listening) return;
        if (answer.status === SocketStatus.NotBound) {
          throw new NotListeningError('not-bound', `nothing listens at ${target}: the port is not bound`);
        }
        throw new NotListeningError('not-listening', `nothing listens at ${target}: the port is bound but not listening`);
      case PacketType.SocketConnectionResponse:
        if (answer.status === ConnectionStatus.Accepted) return;
        if (answer.status === ConnectionStatus.Denied) throw new ConnectionRefusedError(`${target} refused the connection`);
        throw new NotListeningError('not-listening', `nothing listens at ${target}: it stopped listening`);
      default:
        throw new ClientError('ERR_REQUEST_FAILED', `connect to ${target}: unexpected answer`);
    }
  }

  #release(connection: VirtualConnection): void {
    if (this.#connections.get(connection.connectionId) === connection) this.#connections.delete(connection.connectionId);
    // A connector's port is its own; an accepted connection shares its listener's.
    const owner = this.#ports.get(connection.localPort);
    if (owner && owner.actor === connection.actor) {
      this.#unbindPort(owner, connection.localPort);
      this.#sockets.delete(owner);
    }
  }

  /** Control frames for connections and requests from other clients (data comes through onData). */
  #onFrame(type: number, frame: Uint8Array): void {
    if (type === PacketType.Datagram) return this.#datagrams.receive(frame);
    const packet = decodeFrame(frame);
    if (packet instanceof Error) {
      this.#session?.close(new RelayLostError(`the relay sent a bad packet: ${packet.message}`, { cause: packet }));
      return;
    }
    switch (packet.type) {
      case PacketType.WindowUpdate:
        this.#connections.get(packet.connectionId)?.receiveWindowUpdate(packet.bytes);
        return;
      case PacketType.SocketEnd:
        this.#connections.get(packet.connectionId)?.receiveEnd();
        return;
      case PacketType.SocketClosed:
        // Unknown ids are ignored: the close may have crossed ours (§8).
        this.#connections.get(packet.connectionId)?.receiveClosed(packet.reason);
        return;
      case PacketType.SocketStatusRequest:
        this.#answerStatus(packet);
        return;
      case PacketType.SocketConnectionRequest:
        void this.#answerConnection(packet);
        return;
      case PacketType.PeerKey:
        // Comes just before the request or response of its connection (§2a).
        this.#peerKeys.set(packet.connectionId, packet.publicKey);
        return;
    }
  }

  /** The key the relay announced for `connectionId`, forgotten here once taken. */
  #takePeerKey(connectionId: number): Uint8Array | undefined {
    const key = this.#peerKeys.get(connectionId);
    this.#peerKeys.delete(connectionId);
    return key;
  }

  #answerStatus(packet: Extract<Packet, { type: typeof PacketType.SocketStatusRequest }>): void {
    const socket = this.#ports.get(packet.destination.port);
    const status =
      socket === undefined ? SocketStatus.NotBound : socket.listening ? SocketStatus.Listening : SocketStatus.NotListening;
    this.#session?.write(encodePacket({ type: PacketType.SocketStatusResponse, requestId: packet.requestId, status }));
  }

  async #answerConnection(packet: Extract<Packet, { type: typeof PacketType.SocketConnectionRequest }>): Promise<void> {
    const session = this.#session;
    const socket = this.#ports.get(packet.destination.port);
    const respond = (status: number): void => {
      session?.write(
        encodePacket({ type: PacketType.SocketConnectionResponse, requestId: packet.requestId, connectionId: packet.connectionId, status }),
      );
    };
    const peerKey = this.#takePeerKey(packet.connectionId);
    if (socket === undefined || !socket.listening) {
      respond(ConnectionStatus.NotListening);
      return;
    }
    const request = {
      remoteAddress: formatIpv4(packet.source.ip),
      remotePort: packet.source.port,
      localPort: packet.destination.port,
    };
    const accepted = await socket.offer(request);
    // The session may have ended while the user decided; the relay has dropped the request.
    if (session !== this.#session || session === undefined) return;
    if (!accepted) {
      respond(socket.listening ? ConnectionStatus.Denied : ConnectionStatus.NotListening);
      return;
    }
    const actor = startSocketActor(this.#socketHost, {
      accepted: true,
      port: request.localPort,
      remote: `${request.remoteAddress}:${request.remotePort}`,
    });
    const connection = new VirtualConnection(this.#connectionHost, actor, packet.connectionId, {
      localAddress: this.virtualIp,
      localPort: request.localPort,
      remoteAddress: request.remoteAddress,
      remotePort: request.remotePort,
      peerKey,
    });
    this.#connections.set(packet.connectionId, connection);
    respond(ConnectionStatus.Accepted);
    if (!this.#e2e) {
      connection.expectPlaintextPeer();
      socket.deliver(connection);
      return;
    }
    // The listener gets the connection once the end-to-end handshake and the key checks passed.
    try {
      socket.deliver(await this.#secure(connection, 'acceptor'));
    } catch (error) {
      this.#logger.warn({ err: error, remote: `${request.remoteAddress}:${request.remotePort}` }, 'end-to-end handshake failed; connection refused');
    }
  }

  /** What the session proves at Hello (§2a): the key, signing through the platform; undefined says Hello version 1. */
  #helloIdentity(): HelloIdentity | undefined {
    const identity = this.#identity;
    const hooks = this.#platform.identity;
    if (identity === undefined || hooks === undefined) return undefined;
    return { publicKey: identity.publicKey, signChallenge: (challenge) => hooks.signChallenge(identity, challenge) };
  }

  /** Runs the end-to-end handshake over a raw connection (docs/SECURITY.md), through the platform (e2e is on only where it has one). */
  #secure(raw: VirtualConnection, role: 'connector' | 'acceptor'): Promise<VirtualConnection> {
    return this.#platform.identity!.secureConnection(raw, {
      identity: this.#identity!,
      role,
      pins: this.#pins,
      timeoutMs: this.#options.requestTimeoutMs,
      clock: this.#options.clock,
      warn: (message) => this.#logger.warn(message),
    });
  }
}
