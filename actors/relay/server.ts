/**
 * The relay's server: it owns the listeners (TCP/TLS, WebSocket) and the relay's life: start,
 * certificate replacement, status, and shutdown in order. Who gets in is admission.ts's. The
 * rooms it assembles are described in docs/ARCHITECTURE.md.
 *
 * Everything a client can make the relay hold is bounded (docs/RELAY.md "Bounds", issue 9):
 * bytes of incomplete frames per host and relay-wide (connection.ts), the time a frame may take
 * (sweep.ts), pairs, pending requests and bound ports (the tables), queued bytes per destination
 * and relay-wide (outbound.ts). Per-host counts use limits.ts's host key (IPv6 by prefix).
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'eventemitter3';
import type { Logger } from '../logger.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import type { RelayBus, RelayBusEvents } from './relay-events.ts';
import { type Relay, type RelayStatus, type StatusQuery } from './relay-types.ts';
import { createCounters, type RelayCounters } from './counters.ts';
import { startSweep, sweepPeriodMs } from './sweep.ts';
import { buildStatus } from './status.ts';
import type { RelayContext } from './context.ts';
import { assembleContext } from './assemble.ts';
import { Admission } from './admission.ts';
import { Transports, type TransportOptions } from './transports.ts';
import type { RelayTlsOptions } from './tls.ts';
import { WsListener, type WsRefusal } from './ws-server.ts';

/** The running relay behind the `Relay` handle that startRelay returns. */
export class RelayServer implements Relay {
  readonly bus: RelayBus = new EventEmitter<RelayBusEvents>();
  readonly counters: RelayCounters = createCounters();
  host: string;
  port = 0;

  readonly #ctx: RelayContext;
  readonly #log: Logger;
  readonly #transports: Transports;
  /** The WebSocket port, when there is one (ws-server.ts). */
  readonly #ws: WsListener | undefined;
  readonly #admission: Admission;
  readonly #startedAt: number;
  #stopSweep: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedRelayOptions, transport: TransportOptions = {}) {
    this.host = options.host;
    this.#log = options.logger;
    this.#ctx = assembleContext(options, this.bus, this.counters);
    this.#startedAt = options.clock.now();
    this.#transports = new Transports(options.port, transport, (socket, kind) => this.#admission.onTcp(socket, kind));
    this.#admission = new Admission(this.#ctx, this.#transports, () => this.#closing !== undefined);
    this.#ws =
      options.websocket === undefined
        ? undefined
        : new WsListener(options.websocket, {
            log: this.#log,
            maxFrameBytes: options.maxFrameBytes,
            idleTimeoutMs: options.helloTimeoutMs,
            accept: (ws, refused) => this.#admission.onWebSocket(ws, refused),
            // TLS on the TCP port means wss on this one, with the same identity and bounds.
            ...(this.#transports.identity === undefined || options.websocket.plaintext === true ? {} : { secure: (raw: net.Socket, served: (socket: Duplex, refused: WsRefusal | undefined) => void) => this.#admission.onWss(raw, served) }),
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

  admitStream(stream: Duplex, realIp: string, publicKey?: Uint8Array): number | undefined {
    return this.#admission.admitStream(stream, realIp, publicKey);
  }

  identityAt(address: { ip: number; port: number }): { realIp: string; publicKey: Uint8Array | undefined } | undefined {
    const host = this.#ctx.hosts.get(address.ip);
    const conn = host?.ports.get(address.port) ?? host?.conns.values().next().value;
    return conn === undefined ? undefined : { realIp: conn.realIp, publicKey: conn.publicKey };
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
      [...this.#admission.sockets].map((socket) => (socket.destroyed ? undefined : new Promise((resolve) => socket.once('close', resolve)))),
    );
    await serverClosed;
    await ctx.options.store.flush();
    this.#log.info('relay stopped');
    this.bus.emit('relay.closed', { host: this.host, port: this.port });
  }
}
