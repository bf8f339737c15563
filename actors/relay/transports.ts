/**
 * The relay's listeners: TLS on `port` when it has a certificate (and, with `plaintextPort`, plain
 * TCP beside it), plain TCP on `port` when it has none. Each accepted TCP socket goes to the
 * server's admission as it arrives, before any TLS handshake, so the per-IP bound counts
 * handshakes under way; `secure` then runs the handshake, bounded in time, before the relay
 * reads a frame from it.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../logger.ts';
import type { RelayClock } from './relay-options.ts';
import { TlsIdentity, type RelayTlsOptions } from './tls.ts';

/** How a connection reached the relay. */
export type RelayTransport = 'tls' | 'tcp';

/** What the relay serves besides its options: kept apart so status() never sees key material. */
export interface TransportOptions {
  /** Key and certificate: TLS on `port`. @default undefined (plain TCP on `port`) */
  tls?: RelayTlsOptions;
  /** With `tls`, also plain TCP on this port (0 = any free one). @default undefined (none) */
  plaintextPort?: number;
}

interface Listener {
  transport: RelayTransport;
  server: net.Server;
  /** As asked for (0 = any), then as bound. */
  port: number;
}

/** The relay's listening sockets and its TLS identity. */
export class Transports {
  readonly identity: TlsIdentity | undefined;
  readonly #listeners: Listener[] = [];
  /** TLS sockets whose handshake is under way, destroyed if the relay stops meanwhile. */
  readonly #handshaking = new Set<tls.TLSSocket>();

  constructor(port: number, options: TransportOptions, accept: (socket: net.Socket, transport: RelayTransport) => void) {
    this.identity = options.tls === undefined ? undefined : new TlsIdentity(options.tls);
    const add = (transport: RelayTransport, at: number): void => {
      const server = net.createServer({ noDelay: true }, (socket) => accept(socket, transport));
      this.#listeners.push({ transport, server, port: at });
    };
    add(this.identity ? 'tls' : 'tcp', port);
    if (this.identity && options.plaintextPort !== undefined) add('tcp', options.plaintextPort);
  }

  /** Listens on every port (the first is the relay's `port`); a failure closes those already open. */
  async listen(host: string, log: Logger): Promise<void> {
    try {
      for (const listener of this.#listeners) {
        const server = listener.server;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port: listener.port }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (error) => log.error({ err: error, transport: listener.transport }, 'server error'));
        listener.port = (server.address() as net.AddressInfo).port;
      }
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** The bound port of the main listener. */
  get port(): number {
    return this.#listeners[0].port;
  }

  /** TLS handshakes under way: connections that will be clients, counted against maxClients. */
  get handshakes(): number {
    return this.#handshaking.size;
  }

  /** The bound plain-TCP port beside TLS, if any. */
  get plaintextPort(): number | undefined {
    return this.#listeners.length > 1 ? this.#listeners[1].port : undefined;
  }

  /**
   * The socket to use for a connection accepted on `transport`: `raw` itself for plain TCP (it
   * may carry frames at once), else a TLS socket over it whose handshake has begun; `secured`
   * runs when it completes. A handshake that fails or takes longer than `timeoutMs` (on the
   * relay's clock) destroys the socket, and `failed` says why.
   */
  secure(raw: net.Socket, transport: RelayTransport, clock: RelayClock, timeoutMs: number, secured: () => void, failed: (reason: string) => void): net.Socket {
    if (transport === 'tcp' || this.identity === undefined) return raw;
    const socket = this.identity.accept(
      raw,
      clock,
      timeoutMs,
      () => {
        this.#handshaking.delete(socket);
        secured();
      },
      failed,
    );
    this.#handshaking.add(socket);
    socket.once('close', () => this.#handshaking.delete(socket));
    return socket;
  }

  /** Stops accepting, and cuts handshakes under way (they are no clients yet). */
  async close(): Promise<void> {
    const closed = this.#listeners.map((l) => new Promise<void>((resolve) => (l.server.listening ? l.server.close(() => resolve()) : resolve())));
    for (const socket of this.#handshaking) socket.destroy();
    this.#handshaking.clear();
    await Promise.all(closed);
  }
}
