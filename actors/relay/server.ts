/**
 * The relay's TCP server: it listens, admits or refuses each connection (§9 TooManyClients,
 * RelayShuttingDown), makes one Connection per admitted socket, routes the control channel to the
 * actors' tables, and shuts down in order. The rooms it assembles are described in
 * docs/ARCHITECTURE.md.
 *
 * Everything a client can make the relay hold is bounded (docs/RELAY.md "Bounds", issue 9):
 * bytes of incomplete frames per host and relay-wide (connection.ts), the time a frame may take
 * (sweep.ts), pairs, pending requests and bound ports (the tables), queued bytes per destination
 * and relay-wide (outbound.ts). Per-host counts use limits.ts's host key (IPv6 by prefix).
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'eventemitter3';
import { ErrorCode, PacketType, encodePacket, normaliseRealIp } from '../../protocol/index.ts';
import type { Logger } from '../logger.ts';
import { Tally, hostKey } from './limits.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import type { RelayBus, RelayBusEvents } from './relay-events.ts';
import { CLOSE_LINGER_MS, type Relay, type RelayStatus, type StatusQuery } from './relay-types.ts';
import { countRefusal, createCounters, type RelayCounters } from './counters.ts';
import { Connection } from './connection.ts';
import { startSweep, sweepPeriodMs } from './sweep.ts';
import { buildStatus } from './status.ts';
import type { RelayContext } from './context.ts';
import { assembleContext } from './assemble.ts';
import { Transports, type RelayTransport, type TransportOptions } from './transports.ts';
import type { RelayTlsOptions } from './tls.ts';
import type { RelaySocket } from './transport.ts';
import { WsListener, type WsRefusal } from './ws-server.ts';
import type { WsTransport } from './ws-transport.ts';


/** The running relay behind the `Relay` handle that startRelay returns. */
export class RelayServer implements Relay {
  readonly bus: RelayBus = new EventEmitter<RelayBusEvents>();
  readonly counters: RelayCounters = createCounters();
  host: string;
  port = 0;

  readonly #ctx: RelayContext;
  readonly #log: Logger;
  readonly #transports: Transports;
  readonly #sockets = new Set<RelaySocket>();
  /** The WebSocket port, when there is one (ws-server.ts). */
  readonly #ws: WsListener | undefined;
  /** Live TCP connections per host key (real IP or IPv6 prefix), for maxConnectionsPerIp. */
  readonly #perIp = new Tally();
  readonly #startedAt: number;
  #nextClientId = 1;
  #stopSweep: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedRelayOptions, transport: TransportOptions = {}) {
    this.host = options.host;
    this.#log = options.logger;
    this.#ctx = assembleContext(options, this.bus, this.counters);
    this.#startedAt = options.clock.now();
    this.#transports = new Transports(options.port, transport, (socket, kind) => this.#serverOnConnection(socket, kind));
    this.#ws =
      options.websocket === undefined
        ? undefined
        : new WsListener(options.websocket, {
            log: this.#log,
            maxFrameBytes: options.maxFrameBytes,
            idleTimeoutMs: options.helloTimeoutMs,
            accept: (ws, refused) => this.#acceptWs(ws, refused),
            // TLS on the TCP port means wss on this one, with the same identity and bounds.
            ...(this.#transports.identity === undefined || options.websocket.plaintext === true ? {} : { secure: (raw: net.Socket, served: (socket: Duplex, refused: WsRefusal | undefined) => void) => this.#wssOnConnection(raw, served) }),
          });
  }

  get websocket(): Relay['websocket'] {
    const ws = this.#ws;
    return ws === undefined ? undefined : { host: ws.host, port: ws.port, url: ws.url, tls: ws.tls };
  }

  get tlsFingerprint(): string | undefined {
    return this.#transports.identity?.fingerprint;
  }

  get plaintextPort(): number | undefined {
    return this.#transports.plaintextPort;
  }

  setTls(material: RelayTlsOptions): string {
    const identity = this.#transports.identity;
    if (identity === undefined) throw new Error('the relay serves plain TCP only: it has no TLS certificate to replace');
    const fingerprint = identity.set(material);
    this.#log.info({ fingerprint }, 'tls certificate replaced; new connections get it');
    return fingerprint;
  }

  async listen(): Promise<void> {
    await this.#transports.listen(this.#ctx.options.host, this.#log);
    this.port = this.#transports.port;
    try {
      await this.#ws?.listen();
    } catch (error) {
      await this.#transports.close();
      throw error;
    }
    const sweepMs = sweepPeriodMs(this.#ctx);
    this.#stopSweep = startSweep(this.#ctx, sweepMs);
    this.#log.info({ host: this.host, port: this.port, plaintextPort: this.plaintextPort, tls: this.tlsFingerprint, sweepMs }, 'relay listening');
    this.bus.emit('relay.listening', { host: this.host, port: this.port });
  }

  /** Why a new connection is refused (and the bound that refuses it), or undefined to admit it. */
  #admission(realIp: string, key: string): { refusal: string; limit?: 'maxClients' | 'maxConnectionsPerIp' } | undefined {
    const o = this.#ctx.options;
    const fromIp = this.#perIp.get(key);
    if (this.#closing !== undefined) return { refusal: 'the relay is stopping' };
    if (realIp === '') return { refusal: 'the connection has no remote address' };
    // Handshakes under way count: a flood of TLS connections that never finish cannot fill the relay past its bound.
    if (this.#ctx.conns.size + this.#transports.handshakes >= o.maxClients) return { refusal: `the relay is full (${o.maxClients} clients)`, limit: 'maxClients' };
    if (fromIp >= o.maxConnectionsPerIp) {
      const who = key === realIp ? realIp : `${realIp} (counted as ${key})`;
      return { refusal: `${who} already has ${fromIp} connections, the most one IP may have`, limit: 'maxConnectionsPerIp' };
    }
    return undefined;
  }

  /**
   * A TCP connection on one of the listeners: admitted or refused at once, by its TCP peer's
   * address, so a TLS handshake under way holds a per-IP slot; frames are read once it is secure.
   */
  #serverOnConnection(raw: net.Socket, transport: RelayTransport): void {
    const ctx = this.#ctx;
    const realIp = normaliseRealIp(raw.remoteAddress ?? '');
    const key = hostKey(realIp, ctx.options.ipv6PrefixLength);
    const refused = this.#admission(realIp, key);
    // On the TCP socket itself: a TLS socket writes through it.
    raw.setNoDelay(true);
    const socket = this.#transports.secure(
      raw,
      transport,
      ctx.clock,
      ctx.options.tlsHandshakeTimeoutMs,
      () => (refused === undefined ? this.#admit(socket, realIp, key) : this.#refuse(socket, realIp, refused)),
      (reason) => this.#log.debug({ realIp, reason }, 'tls handshake failed'),
    );
    // The TLS socket reports its TCP socket's errors too; this listener only keeps one that comes first from being unhandled.
    if (socket !== raw) raw.on('error', (error) => this.#log.debug({ err: error }, 'socket error'));
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', (error) => this.#log.debug({ err: error }, 'socket error'));
    if (refused === undefined) {
      this.#perIp.add(key, 1);
      socket.once('close', () => this.#perIp.add(key, -1));
      if (transport === 'tcp') this.#admit(socket, realIp, key);
      return;
    }
    // Over TLS the Error goes out after the handshake, within the same linger.
    if (transport === 'tcp') this.#refuse(socket, realIp, refused);
    // Real time, not the relay's clock: this frees a socket, it is no protocol timeout.
    setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  /**
   * A TCP connection on the WebSocket port when it serves wss: admitted or refused by its TCP
   * peer as on the TCP port, so its TLS handshake holds a slot of maxClients (Transports counts
   * it) and of its IP until the handshake ends; the secured socket then goes to the HTTP server,
   * whose upgrade is admitted by the real IP (X-Forwarded-For behind a trusted proxy). A refusal
   * made here stands at the upgrade, and the socket is cut after the linger as on the TCP port.
   */
  #wssOnConnection(raw: net.Socket, served: (socket: Duplex, refused: WsRefusal | undefined) => void): void {
    const ctx = this.#ctx;
    const peerIp = normaliseRealIp(raw.remoteAddress ?? '');
    const key = hostKey(peerIp, ctx.options.ipv6PrefixLength);
    const refused = this.#admission(peerIp, key);
    raw.setNoDelay(true);
    raw.on('error', (error) => this.#log.debug({ err: error }, 'socket error'));
    let holding = refused === undefined;
    if (holding) this.#perIp.add(key, 1);
    // The upgrade counts the connection again by its real IP: the handshake's slot ends first.
    const release = (): void => {
      if (!holding) return;
      holding = false;
      this.#perIp.add(key, -1);
    };
    const socket = this.#transports.secure(
      raw,
      'tls',
      ctx.clock,
      ctx.options.tlsHandshakeTimeoutMs,
      () => {
        release();
        served(socket, refused);
      },
      (reason) => this.#log.debug({ realIp: peerIp, reason }, 'wss handshake failed'),
    );
    socket.once('close', release);
    socket.on('error', (error) => this.#log.debug({ err: error }, 'socket error'));
    // Real time, not the relay's clock: this frees a socket, it is no protocol timeout.
    if (refused !== undefined) setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
  }

  /**
   * Admits a client connection that is not a socket of ours, speaking as `realIp`: a cluster's
   * stand-in for a client of another relay (actors/relay/cluster/ghost.ts). The Connection uses
   * only the Duplex side of a socket. The relay-local id, or undefined if refused. `publicKey`:
   * the key another relay of the cluster verified (Relay.admitStream); never from the network.
   */
  admitStream(stream: Duplex, realIp: string, publicKey?: Uint8Array): number | undefined {
    const key = hostKey(realIp, this.#ctx.options.ipv6PrefixLength);
    const refused = this.#admission(realIp, key);
    const socket = stream as unknown as RelaySocket;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', (error: Error) => this.#log.debug({ err: error }, 'stream error'));
    if (refused !== undefined) {
      this.#refuse(socket, realIp, refused);
      setTimeout(() => socket.destroy(), CLOSE_LINGER_MS).unref();
      return undefined;
    }
    this.#perIp.add(key, 1);
    socket.once('close', () => this.#perIp.add(key, -1));
    return this.#admit(socket, realIp, key, publicKey)?.id;
  }

  identityAt(address: { ip: number; port: number }): { realIp: string; publicKey: Uint8Array | undefined } | undefined {
    const host = this.#ctx.hosts.get(address.ip);
    const conn = host?.ports.get(address.port) ?? host?.conns.values().next().value;
    return conn === undefined ? undefined : { realIp: conn.realIp, publicKey: conn.publicKey };
  }

  /**
   * A WebSocket client: admitted or refused like a TCP one (a refusal made when its wss socket
   * arrived stands); a text message is its protocol error.
   */
  #acceptWs(ws: WsTransport, refusedAtAccept: WsRefusal | undefined): void {
    const ctx = this.#ctx;
    const realIp = ws.remoteAddress;
    const key = hostKey(realIp, ctx.options.ipv6PrefixLength);
    const refused = refusedAtAccept ?? this.#admission(realIp, key);
    this.#sockets.add(ws);
    ws.once('close', () => this.#sockets.delete(ws));
    ws.on('error', (error: Error) => this.#log.debug({ err: error }, 'socket error'));
    if (refused !== undefined) {
      this.#refuse(ws, realIp, refused);
      // Real time, not the relay's clock: this frees a socket, it is no protocol timeout.
      setTimeout(() => ws.destroy(), CLOSE_LINGER_MS).unref();
      return;
    }
    this.#perIp.add(key, 1);
    ws.once('close', () => this.#perIp.add(key, -1));
    const conn = this.#admit(ws, realIp, key);
    if (conn !== undefined) ws.onViolation = (message) => conn.protocolError('MalformedFrame', message);
  }

  #refuse(socket: RelaySocket, realIp: string, refused: { refusal: string; limit?: 'maxClients' | 'maxConnectionsPerIp' }): void {
    this.counters.clientsRejected++;
    if (refused.limit !== undefined) countRefusal(this.counters, refused.limit);
    const code = this.#closing !== undefined ? ErrorCode.RelayShuttingDown : ErrorCode.TooManyClients;
    this.#log.warn({ realIp, code, reason: refused.refusal }, 'client refused');
    socket.end(encodePacket({ type: PacketType.Error, code, message: refused.refusal }));
    // Read and discard, so the peer's FIN is seen and the socket closes without the linger.
    socket.resume();
  }

  /** A connection that may carry frames (plain TCP, or TLS once secure): one Connection and its actor. */
  #admit(socket: RelaySocket, realIp: string, key: string, vouchedKey?: Uint8Array): Connection | undefined {
    const ctx = this.#ctx;
    // The relay began stopping during the handshake: it is no client, and close() waits for it.
    if (this.#closing !== undefined) {
      socket.destroy();
      return undefined;
    }
    const conn = new Connection(ctx, this.#nextClientId++, socket, realIp, key);
    // Before its machine starts: a connection with a key already is not challenged (machines.ts, §2a).
    if (vouchedKey !== undefined) conn.publicKey = vouchedKey;
    ctx.conns.set(conn.id, conn);
    this.counters.clientsTotal++;
    // Its socket's listeners first: the machine's actor is made and started in the same turn,
    // before any of them can run.
    conn.wire();
    this.#log.debug({ clientId: conn.id, realIp }, 'tcp connected');
    ctx.machines.startConnection(conn);
    return conn;
  }

  status(query: StatusQuery = {}): RelayStatus {
    return buildStatus(this.#ctx, { host: this.host, port: this.port, startedAt: this.#startedAt }, query);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const ctx = this.#ctx;
    this.#log.info({ clients: ctx.conns.size }, 'relay stopping');
    this.bus.emit('relay.closing', { host: this.host, port: this.port });
    const serverClosed = Promise.all([this.#transports.close(), this.#ws?.close()]);
    this.#stopSweep?.();
    // Pairs first, so each end reads SocketClosed(RelayShutdown) before Error(RelayShuttingDown).
    for (const pair of [...ctx.pairs.values()]) ctx.control.send({ to: { kind: 'pair', id: pair.id }, event: { type: 'relay.shutdown' } });
    for (const conn of [...ctx.conns.values()]) ctx.control.send({ to: { kind: 'connection', id: conn.id }, event: { type: 'relay.shutdown' } });
    // Not events.once: it would reject on the socket's 'error', which a closing peer may cause.
    await Promise.all(
      [...this.#sockets].map((socket) => (socket.destroyed ? undefined : new Promise((resolve) => socket.once('close', resolve)))),
    );
    await serverClosed;
    await ctx.options.store.flush();
    this.#log.info('relay stopped');
    this.bus.emit('relay.closed', { host: this.host, port: this.port });
  }
}
