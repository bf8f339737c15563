/**
 * The relay's doors: every connection, on any listener (TCP, TLS, WebSocket, wss) or from the
 * cluster (a stand-in's in-memory stream), is admitted or refused here (§9 TooManyClients,
 * RelayShuttingDown) by the same bounds (maxClients counting TLS handshakes under way,
 * maxConnectionsPerIp by limits.ts's host key), and an admitted one becomes a Connection with its
 * machine. server.ts owns the listeners and the relay's life; this file owns who gets in.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCode, PacketType, encodePacket, normaliseRealIp } from '../../protocol/index.ts';
import type { Logger } from '../logger.ts';
import { Tally, hostKey } from './limits.ts';
import { CLOSE_LINGER_MS } from './relay-types.ts';
import { countRefusal } from './counters.ts';
import { Connection } from './connection.ts';
import type { RelayContext } from './context.ts';
import type { RelayTransport, Transports } from './transports.ts';
import type { RelaySocket } from './transport.ts';
import type { WsRefusal } from './ws-server.ts';
import type { WsTransport } from './ws-transport.ts';

/** Why a connection is refused, and the bound that refused it. */
interface Refusal {
  refusal: string;
  limit?: 'maxClients' | 'maxConnectionsPerIp';
}

export class Admission {
  /** Every socket admitted or lingering after a refusal, for close() to wait on. */
  readonly sockets = new Set<RelaySocket>();
  readonly #ctx: RelayContext;
  readonly #log: Logger;
  readonly #transports: Transports;
  readonly #isClosing: () => boolean;
  /** Live connections per host key (real IP or IPv6 prefix), for maxConnectionsPerIp. */
  readonly #perIp = new Tally();
  #nextClientId = 1;

  constructor(ctx: RelayContext, transports: Transports, isClosing: () => boolean) {
    this.#ctx = ctx;
    this.#log = ctx.options.logger;
    this.#transports = transports;
    this.#isClosing = isClosing;
  }

  /** Why a new connection is refused (and the bound that refuses it), or undefined to admit it. */
  #refusal(realIp: string, key: string): Refusal | undefined {
    const o = this.#ctx.options;
    const fromIp = this.#perIp.get(key);
    if (this.#isClosing()) return { refusal: 'the relay is stopping' };
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
  onTcp(raw: net.Socket, transport: RelayTransport): void {
    const ctx = this.#ctx;
    const realIp = normaliseRealIp(raw.remoteAddress ?? '');
    const key = hostKey(realIp, ctx.options.ipv6PrefixLength);
    const refused = this.#refusal(realIp, key);
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
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
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
  onWss(raw: net.Socket, served: (socket: Duplex, refused: WsRefusal | undefined) => void): void {
    const ctx = this.#ctx;
    const peerIp = normaliseRealIp(raw.remoteAddress ?? '');
    const key = hostKey(peerIp, ctx.options.ipv6PrefixLength);
    const refused = this.#refusal(peerIp, key);
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
    const refused = this.#refusal(realIp, key);
    const socket = stream as unknown as RelaySocket;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
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

  /**
   * A WebSocket client: admitted or refused like a TCP one (a refusal made when its wss socket
   * arrived stands); a text message is its protocol error.
   */
  onWebSocket(ws: WsTransport, refusedAtAccept: WsRefusal | undefined): void {
    const ctx = this.#ctx;
    const realIp = ws.remoteAddress;
    const key = hostKey(realIp, ctx.options.ipv6PrefixLength);
    const refused = refusedAtAccept ?? this.#refusal(realIp, key);
    this.sockets.add(ws);
    ws.once('close', () => this.sockets.delete(ws));
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
    if (conn === undefined) return;
    ws.onViolation = (message, error) => conn.protocolError(error ?? 'MalformedFrame', message);
    // Past Hello the reader takes the relay's largest frame, and ws's maxPayload (close 1009) is the limit.
    const most = ctx.options.maxFrameBytes;
    ws.frameLimit = () => (conn.reader.maxFrameBytes < most ? conn.reader.maxFrameBytes : undefined);
  }

  #refuse(socket: RelaySocket, realIp: string, refused: Refusal): void {
    this.#ctx.counters.clientsRejected++;
    if (refused.limit !== undefined) countRefusal(this.#ctx.counters, refused.limit);
    const code = this.#isClosing() ? ErrorCode.RelayShuttingDown : ErrorCode.TooManyClients;
    this.#log.warn({ realIp, code, reason: refused.refusal }, 'client refused');
    socket.end(encodePacket({ type: PacketType.Error, code, message: refused.refusal }));
    // Read and discard, so the peer's FIN is seen and the socket closes without the linger.
    socket.resume();
  }

  /** A connection that may carry frames (plain TCP, or TLS once secure): one Connection and its actor. */
  #admit(socket: RelaySocket, realIp: string, key: string, vouchedKey?: Uint8Array): Connection | undefined {
    const ctx = this.#ctx;
    // The relay began stopping during the handshake: it is no client, and close() waits for it.
    if (this.#isClosing()) {
      socket.destroy();
      return undefined;
    }
    const conn = new Connection(ctx, this.#nextClientId++, socket, realIp, key);
    // Before its machine starts: a connection with a key already is not challenged (machines.ts, §2a).
    if (vouchedKey !== undefined) conn.publicKey = vouchedKey;
    ctx.conns.set(conn.id, conn);
    this.#ctx.counters.clientsTotal++;
    // Its socket's listeners first: the machine's actor is made and started in the same turn,
    // before any of them can run.
    conn.wire();
    this.#log.debug({ clientId: conn.id, realIp }, 'tcp connected');
    ctx.machines.startConnection(conn);
    return conn;
  }
}
