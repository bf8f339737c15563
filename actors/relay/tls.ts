/**
 * The relay's TLS (issue 12): the key and certificate new connections are offered, their
 * fingerprint, and the server side of a handshake over an accepted TCP socket. TLS 1.3 only.
 * The handshake runs on the raw socket the server accepted, so the per-IP count and the real IP
 * are the TCP peer's from the first byte, and a handshake that does not finish is cut.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { formatFingerprint } from '../../protocol/index.ts';
import type { RelayClock } from './relay-options.ts';

/** TLS 1.3 only: no downgrade to older versions' weaker suites, and one round trip fewer. */
export const TLS_MIN_VERSION = 'TLSv1.3';

/** A key and its certificate, PEM, as `--tls-key` / `--tls-cert` files hold them. */
export interface RelayTlsOptions {
  /** PEM private key. */
  key: string | Buffer;
  /** PEM certificate (the first one is the relay's own; a chain may follow). */
  cert: string | Buffer;
}

/** `sha256:AB:…` of a PEM certificate's public key (protocol/fingerprint.ts). */
export function certificateFingerprint(cert: string | Buffer): string {
  const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  return formatFingerprint(createHash('sha256').update(spki).digest());
}

/** The certificate new connections are offered; replaced whole by `set` (SIGHUP). */
export class TlsIdentity {
  #context!: tls.SecureContext;
  #fingerprint!: string;

  constructor(material: RelayTlsOptions) {
    this.set(material);
  }

  get fingerprint(): string {
    return this.#fingerprint;
  }

  /**
   * Takes a new key and certificate for connections accepted from now on; those open keep theirs.
   * Throws (and keeps the current ones) when they cannot be read or do not match.
   */
  set(material: RelayTlsOptions): string {
    // createSecureContext refuses a key that does not match the certificate ("key values mismatch").
    const context = tls.createSecureContext({ key: material.key, cert: material.cert, minVersion: TLS_MIN_VERSION });
    const fingerprint = certificateFingerprint(material.cert);
    this.#context = context;
    this.#fingerprint = fingerprint;
    return fingerprint;
  }

  /**
   * Starts the server side of a handshake on `raw`. `secured` runs once it completes; a handshake
   * that fails or takes longer than `timeoutMs` (on the relay's clock) destroys the socket, and
   * `failed` says why. The returned socket is the one to read, write and watch for 'close'.
   */
  accept(raw: net.Socket, clock: RelayClock, timeoutMs: number, secured: () => void, failed: (reason: string) => void): tls.TLSSocket {
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#context });
    const timer = clock.setTimeout(() => {
      failed(`no TLS handshake within ${timeoutMs} ms`);
      socket.destroy();
    }, timeoutMs);
    let done = false;
    const settle = (): void => {
      done = true;
      clock.clearTimeout(timer);
    };
    socket.once('secure', () => {
      settle();
      secured();
    });
    socket.once('error', (error) => {
      if (done) return;
      settle();
      failed(`TLS handshake failed: ${error.message}`);
      socket.destroy();
    });
    socket.once('close', settle);
    return socket;
  }
}
