/**
 * Dialling the relay's socket in Node (issue 12, issue 14): TCP, or TLS 1.3 whose key is checked
 * against the pin (relay-trust.ts) before the socket is handed back, so a relay we do not trust
 * hears no byte from us. The TCP transport (tcp-transport.ts) and the wss opener
 * (node-platform.ts, which runs the WebSocket upgrade over the checked socket) both dial here:
 * one path, one set of words for what went wrong.
 */
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { errorParts } from '../describe-error.ts';
import { checkRelayTrust, type RelayTrustOptions } from './relay-trust.ts';
import { TransportOpenError } from './transport.ts';

/** TLS 1.3 only, as the relay serves it. */
export const RELAY_TLS_MIN_VERSION = 'TLSv1.3';

/** Where and how to dial. */
export interface RelayDial {
  host: string;
  port: number;
  /** The real source address (it decides the virtual IP). */
  localAddress: string | undefined;
  /** TLS 1.3 with the relay's key checked against these; undefined: plain TCP. */
  trust: RelayTrustOptions | undefined;
  /** The relay as messages and the known-relays file name it: `HOST:PORT`, an IPv6 host in brackets. */
  where: string;
  /** Bytes the socket queues before write() asks the writer to wait. @default Node's */
  highWaterMark?: number;
  /** What to do when the relay does not speak TLS, put after "if it serves plain TCP (relay --plaintext), ". */
  plaintextHint: string;
}

/** `HOST:PORT`, an IPv6 host in brackets. */
export function relayWhere(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Connects to `dial.host:dial.port` and resolves with the socket once it may carry bytes: at
 * 'connect' for plain TCP; for TLS after the handshake and the trust check (a failed check
 * destroys the socket and rejects with the RelayFingerprintError). `connected` runs with the
 * socket before the trust check, so whoever reads it later hears a close that happens meanwhile.
 * Rejects with a TransportOpenError in words, or with the signal's reason once it aborts.
 */
export async function dialRelaySocket(dial: RelayDial, signal: AbortSignal, connected?: (socket: net.Socket) => void): Promise<net.Socket> {
  const { where, trust } = dial;
  const hwm = dial.highWaterMark === undefined ? {} : { writableHighWaterMark: dial.highWaterMark };
  const common = { host: dial.host, port: dial.port, ...hwm, ...(dial.localAddress ? { localAddress: dial.localAddress } : {}) };
  const socket =
    trust === undefined
      ? net.connect({ ...common, noDelay: true } as net.NetConnectOpts)
      : // tls.connect ignores writableHighWaterMark; highWaterMark sets both sides' (the read side only buffers what arrives while paused).
        tls.connect({
          ...common,
          ...(dial.highWaterMark === undefined ? {} : { highWaterMark: dial.highWaterMark }),
          // A name, not an address: a proxy in front of the relay may pick its certificate by it.
          ...(net.isIP(dial.host) === 0 ? { servername: dial.host } : {}),
          minVersion: RELAY_TLS_MIN_VERSION,
          // No certificate authority: the pin is the whole check (relay-trust.ts).
          rejectUnauthorized: false,
        } as tls.ConnectionOptions);
  if (trust !== undefined) socket.setNoDelay(true);
  try {
    await once(socket, trust === undefined ? 'connect' : 'secureConnect', { signal });
  } catch (error) {
    socket.destroy();
    if (signal.aborted) throw error;
    if (trust !== undefined && (error as NodeJS.ErrnoException).code?.startsWith('ERR_SSL')) {
      throw new TransportOpenError(
        `no TLS 1.3 handshake (${(error as { reason?: string }).reason ?? (error as Error).message}); if it serves plain TCP (relay --plaintext), ${dial.plaintextHint}`,
        { cause: error },
      );
    }
    // The system's words once, without the address said again: "connection refused (ECONNREFUSED)".
    const { code, text } = errorParts(error);
    const words = text.endsWith(` ${where}`) ? text.slice(0, -where.length - 1) : text;
    throw new TransportOpenError(`${words}${code === undefined ? '' : ` (${code})`}`, { cause: error });
  }
  connected?.(socket);
  if (trust !== undefined) {
    try {
      await checkRelayTrust(socket as tls.TLSSocket, where, trust);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    if (signal.aborted) {
      socket.destroy();
      throw signal.reason;
    }
  }
  return socket;
}
