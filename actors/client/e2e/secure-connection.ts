/**
 * End-to-end encryption of a virtual connection (docs/SECURITY.md "End-to-end encryption"): TLS
 * 1.3 from Node's `tls` (OpenSSL) runs over the raw connection, each end presenting a
 * self-signed certificate for its Ed25519 identity key. The connector is the TLS client, the
 * acceptor the TLS server; each checks that the key the other proved inside TLS is the key the
 * relay announced (PeerKey, docs/PROTOCOL.md §2a) and the key it pinned for that virtual IP.
 * Forward secrecy (ephemeral X25519) and AEAD records come from TLS 1.3.
 *
 * The user holds a {@link SecureConnection}: a VirtualConnection whose sends, reads, end and
 * close go through TLS, while the raw connection beneath it (the client's, bound to the
 * connection id) carries the records with the protocol's flow control.
 */
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { DUPLEX_READABLE_HIGH_WATER_MARK_BYTES, DUPLEX_WRITABLE_HIGH_WATER_MARK_BYTES, VirtualConnection } from '../connection.ts';
import { ClientError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import { startTimer, type Clock } from '../timer.ts';
import { credentialsFor, type TlsCredentials } from './certificate.ts';
import type { KnownPeers, PinCheck } from './known-peers.ts';
import { CloseReason } from '../../../protocol/index.ts';
import { E2E_PREAMBLE, encryptingEndMismatch } from './preamble.ts';

/** What securing one connection needs. */
export interface SecureOptions {
  identity: Identity;
  /** The connector is the TLS client; the acceptor the TLS server. */
  role: 'connector' | 'acceptor';
  pins: KnownPeers | undefined;
  /** Time the handshake may take before ERR_E2E_HANDSHAKE (the client's requestTimeoutMs). */
  timeoutMs: number;
  clock: Clock | undefined;
  /** Told when a changed key is refused (the client's logger), besides the error itself. */
  warn: (message: string) => void;
}

const UTF8 = new TextEncoder();

/**
 * Decrypted bytes kept for the application before TLS is paused (TLS then holds at most its own
 * 16 KiB readable buffer more, and stops reading records, so the window stops being granted).
 * Taking plaintext from 'data' into this queue, rather than `read()` from TLS's buffer, skips a
 * concatenation of the records waiting there and a 'readable' round per record.
 */
export const PLAINTEXT_QUEUE_BYTES = 64 * 1024;

/** True for an OpenSSL error about a record or an alert: the bytes were not what the peer sent. */
function isIntegrityError(error: NodeJS.ErrnoException): boolean {
  return /^ERR_SSL_/.test(error.code ?? '') || /alert|record|decrypt|mac/i.test(error.message);
}

/**
 * A VirtualConnection carried by TLS 1.3 over a raw one. Everything the user calls is plaintext;
 * the window, `receiveWindow` and `bufferedBytes` count the raw (TLS record) bytes beneath.
 */
export class SecureConnection extends VirtualConnection {
  readonly #raw: VirtualConnection;
  readonly #tls: tls.TLSSocket;
  readonly #rawStream: Duplex;
  #error: ClientError | undefined;
  #readEnded = false;
  #closeEmitted = false;
  #endEmitted = false;
  #rawClosed = false;
  /** close() or destroy() was called here: 'close' needs no end from the peer. */
  #local = false;
  #waiter: (() => void) | undefined;
  /** Decrypted chunks not read yet, from #plainHead on, #plainBytes in all. */
  #plain: Uint8Array[] = [];
  #plainHead = 0;
  #plainBytes = 0;

  /** @internal Use {@link secureConnection}. */
  constructor(raw: VirtualConnection, socket: tls.TLSSocket, rawStream: Duplex) {
    // The raw connection's host and actor: one lifecycle for both. Every method that would write
    // through the host is overridden, so no plaintext can reach the wire from this object.
    const parts = raw.layerParts();
    super(
      parts.host,
      parts.actor,
      raw.connectionId,
      { localAddress: raw.localAddress, localPort: raw.localPort, remoteAddress: raw.remoteAddress, remotePort: raw.remotePort, peerKey: raw.peerKey },
    );
    this.#raw = raw;
    this.#tls = socket;
    this.#rawStream = rawStream;
    socket.on('data', (chunk: Buffer) => {
      this.#plain.push(chunk);
      this.#plainBytes += chunk.length;
      if (this.#plainBytes >= PLAINTEXT_QUEUE_BYTES) socket.pause();
      this.#wake();
    });
    socket.on('end', () => {
      this.#readEnded = true;
      this.#emitEnd();
      this.#wake();
      this.#maybeClose();
    });
    raw.on('close', (error) => {
      this.#rawClosed = true;
      // An error fails us once what arrived before it has reached TLS (a peer's alert comes just
      // before its abort, and must be what we report); the raw stream's reader does that, or,
      // when nothing reads now, this does after TLS has had its turn.
      if (error !== undefined) setImmediate(() => this.#fail(error, false));
      this.#wake();
      this.#maybeClose();
    });
  }

  override get error(): ClientError | undefined {
    return this.#error;
  }

  /** The raw connection's receive window, in TLS record bytes (docs/SECURITY.md). */
  override get receiveWindow(): number {
    return this.#raw.receiveWindow;
  }

  /** Raw bytes (TLS records) received and not yet decrypted, plus plaintext decrypted and not read. */
  override get bufferedBytes(): number {
    return this.#raw.bufferedBytes + this.#tls.readableLength + this.#plainBytes;
  }

  override send(data: Uint8Array | string): Promise<void> {
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) bytes = data;
    else if (typeof data === 'string') bytes = UTF8.encode(data);
    else return super.send(data);
    if (this.#error) return Promise.reject(this.#error);
    // Closed: the raw connection says why (a peer's close is ERR_CLOSED_BY_PEER), writing nothing.
    if (this.closed) return this.#raw.send(bytes);
    if (this.#tls.writableEnded) return Promise.reject(new ClientError('ERR_SOCKET_STATE', 'the connection was ended for writing (end() was called)'));
    return new Promise<void>((resolve, reject) => {
      // The callback comes once TLS has handed the records to the raw connection and its send()
      // resolved (window and relay connection took them): the same backpressure as without TLS.
      this.#tls.write(bytes, (error) => (error ? reject(this.#writeFailure(error)) : resolve()));
    });
  }

  /** Why a write TLS could not pass on failed, as the raw connection would say it. */
  #writeFailure(cause: Error): ClientError {
    if (this.#error) return this.#error;
    if (this.#raw.error) return this.#raw.error;
    return new ClientError('ERR_SOCKET_STATE', 'the connection is closed', { cause });
  }

  /** Half-closes: TLS close_notify, then SocketEnd. The peer can still answer. */
  override async end(): Promise<void> {
    if (this.#tls.writableEnded) return;
    if (this.#error) throw this.#error;
    await new Promise<void>((resolve, reject) => {
      this.#tls.once('error', reject);
      this.#tls.end(() => {
        this.#tls.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Closes both directions: TLS close_notify, then SocketClosed Normal a turn later (TLS writes its
   * records to the raw connection within that turn). Sends already resolved have arrived; a send
   * still waiting for window is cut, as without TLS, and then the peer's reads fail with
   * ERR_E2E_TRUNCATED instead of ending cleanly, which is the truth. Never waits on the peer.
   */
  override close(): void {
    this.#local = true;
    if (!this.#tls.writableEnded && !this.#error) this.#tls.end();
    setImmediate(() => this.#raw.close());
  }

  override destroy(): void {
    this.#local = true;
    this.#raw.destroy();
    this.#tls.destroy();
  }

  override keepAlive(): void {
    this.#raw.keepAlive();
  }

  override takeChunk(): Uint8Array | undefined {
    if (this.#plainHead >= this.#plain.length) return undefined;
    const chunk = this.#plain[this.#plainHead++];
    if (this.#plainHead === this.#plain.length) {
      this.#plain = [];
      this.#plainHead = 0;
    }
    this.#plainBytes -= chunk.length;
    if (this.#plainBytes < PLAINTEXT_QUEUE_BYTES && this.#tls.isPaused() && !this.#tls.destroyed) this.#tls.resume();
    return chunk;
  }

  override async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.takeChunk();
      if (chunk !== undefined) return chunk;
      if (this.#error) throw this.#error;
      if (this.#readEnded) return null;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  /** @internal The first failure wins: reads after the data before it, writes at once. */
  override fail(error: ClientError): void {
    this.#fail(error, true);
  }

  /** @internal The raw connection failed beneath TLS (after everything before it reached TLS). */
  rawFailed(error: ClientError): void {
    setImmediate(() => this.#fail(error, false));
  }

  #fail(error: ClientError, tellPeer: boolean): void {
    if (this.#error) return;
    this.#error = error;
    // The peer hears why, with the same code (§8 E2eIntegrity, E2eTruncated), or an abort.
    if (tellPeer) this.#raw.closeWithReason(closeReasonFor(error));
    this.#rawStream.destroy();
    this.#wake();
    this.#maybeClose();
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** @internal The raw stream ended and TLS has processed it: 'close' may be due. */
  settle(): void {
    this.#wake();
    this.#maybeClose();
  }

  /**
   * 'close' once the raw connection is over and TLS has seen the peer's end (read or not), failed,
   * or we closed it ourselves, as a raw connection's 'close' comes with data still unread.
   */
  #maybeClose(): void {
    const tlsEnded = (this.#tls as unknown as { _readableState: { ended: boolean } })._readableState.ended;
    if (this.#closeEmitted || !this.#rawClosed || !(this.#readEnded || this.#error || this.#local || tlsEnded)) return;
    this.#closeEmitted = true;
    // As on a raw connection, 'end' (the peer ended cleanly) comes before 'close' even while its
    // last bytes are unread: a listener that takes a 'close' without 'end' for a reset (the
    // tunnels' splice) would otherwise cut what is still to be read.
    if (tlsEnded && this.#error === undefined && !this.#local) this.#emitEnd();
    this.emit('close', this.#error);
  }

  /** 'end' once: the peer's close_notify, whether or not its data has been read yet. */
  #emitEnd(): void {
    if (this.#endEmitted) return;
    this.#endEmitted = true;
    this.emit('end');
  }
}

/**
 * Runs the TLS 1.3 handshake over `raw` and checks the peer's key (relay-announced, pinned).
 * Resolves with the connection the user gets; rejects with ERR_E2E_* after destroying `raw`.
 */
export async function secureConnection(raw: VirtualConnection, options: SecureOptions): Promise<SecureConnection> {
  const peer = `${raw.remoteAddress}:${raw.remotePort}`;
  const announced = raw.peerFingerprint;
  if (announced === undefined) {
    // A peer without a key cannot encrypt: it is told so (E2eMismatch), as a --no-e2e peer is.
    raw.closeWithReason(CloseReason.E2eMismatch);
    throw new ClientError(
      'ERR_E2E_MISMATCH',
      `${peer} proved no identity key to the relay, so it cannot encrypt end to end and this end does; both ends need an identity (and e2e on), or both must connect with e2e off (--no-e2e)`,
    );
  }
  let credentials: TlsCredentials;
  try {
    credentials = await credentialsFor(options.identity);
  } catch (error) {
    raw.destroy();
    throw error;
  }
  // One SecureContext per identity (certificate.ts): parsing the key and certificate for every
  // connection was half of a handshake's CPU.
  const { context } = credentials;
  // Registered before TLS wraps the stream, so it runs before TLS hears the end: TLS has seen
  // close_notify by then exactly when the peer ended cleanly (docs/SECURITY.md "Truncation").
  let truncated = false;
  let socket!: tls.TLSSocket;
  let secure: SecureConnection | undefined;
  let handshakeError: ClientError | undefined;
  // The peer's first bytes are not the preamble: it does not encrypt. Nothing of it reaches TLS.
  const notEncrypting = (): void => {
    handshakeError ??= new ClientError('ERR_E2E_MISMATCH', encryptingEndMismatch(peer));
    raw.closeWithReason(CloseReason.E2eMismatch);
    socket.destroy();
  };
  const rawStream = rawRecordStream(raw, notEncrypting, (error) => {
    if (secure !== undefined) {
      secure.rawFailed(error);
      return;
    }
    // The raw connection failed during the handshake: say why at once, not at the timeout.
    handshakeError ??=
      error.code === 'ERR_E2E_MISMATCH'
        ? new ClientError('ERR_E2E_MISMATCH', encryptingEndMismatch(peer), { cause: error })
        : new ClientError('ERR_E2E_HANDSHAKE', `the end-to-end (TLS 1.3) handshake with ${peer} failed: ${error.message}`, { cause: error });
    socket.destroy();
  });
  // Our preamble first, then TLS's records (the raw connection sends in order).
  raw.send(E2E_PREAMBLE).catch(() => {});
  rawStream.on('end', () => {
    if (!(socket as unknown as { _readableState: { ended: boolean } })._readableState.ended) truncated = true;
  });
  const common = { secureContext: context, rejectUnauthorized: false } as const;
  socket =
    options.role === 'connector'
      ? tls.connect({ ...common, socket: rawStream, checkServerIdentity: () => undefined })
      : new tls.TLSSocket(rawStream, { ...common, isServer: true, requestCert: true });
  const onError = (error: NodeJS.ErrnoException): void => {
    if (secure === undefined) {
      handshakeError ??= new ClientError(
        'ERR_E2E_HANDSHAKE',
        `the end-to-end (TLS 1.3) handshake with ${peer} failed: ${error.message}`,
        { cause: error },
      );
      return;
    }
    if (secure.error) return;
    if (truncated) return;
    if (isIntegrityError(error)) {
      secure.fail(new ClientError('ERR_E2E_INTEGRITY', `data from ${peer} failed end-to-end authentication (${error.code ?? error.message}): tampered, replayed, reordered or dropped on the way; the connection is closed`, { cause: error }));
    }
  };
  socket.on('error', onError);
  // A server-side TLSSocket made outside tls.Server reports errors as '_tlsError' only.
  socket.on('_tlsError', onError);
  rawStream.on('end', () => {
    setImmediate(() => secure?.settle());
    if (truncated && secure !== undefined) {
      secure.fail(new ClientError('ERR_E2E_TRUNCATED', `${peer} ended the connection without TLS close_notify: its data was cut short on the way (truncated); the connection is closed`));
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = startTimer(options.clock, options.timeoutMs, () =>
        reject(new ClientError('ERR_E2E_HANDSHAKE', `no end-to-end (TLS 1.3) handshake with ${peer} within ${options.timeoutMs} ms (a peer with e2e off is told at once: ERR_E2E_MISMATCH); the relay or the path is too slow or drops data`)),
      );
      const done = (error?: ClientError): void => {
        timer.close();
        if (error) reject(error);
        else resolve();
      };
      socket.once(options.role === 'connector' ? 'secureConnect' : 'secure', () => done());
      socket.once('close', () => done(handshakeError ?? new ClientError('ERR_E2E_HANDSHAKE', `${peer} closed the connection during the end-to-end handshake`)));
      socket.on('error', () => handshakeError && done(handshakeError));
      socket.on('_tlsError', () => handshakeError && done(handshakeError));
    });
    const certificate = socket.getPeerX509Certificate();
    const jwk = certificate?.publicKey.asymmetricKeyType === 'ed25519' ? certificate.publicKey.export({ format: 'jwk' }) : undefined;
    const proven = jwk?.x;
    if (proven !== announced) {
      throw new ClientError(
        'ERR_E2E_PEER_KEY',
        `${peer} presented ${proven === undefined ? 'no Ed25519 key' : `key ${proven}`} inside TLS, but the relay announced ${announced}: a relay or network in the middle; refused`,
      );
    }
    if (options.pins !== undefined) {
      let pin: PinCheck;
      try {
        pin = await options.pins.check(raw.remoteAddress, announced);
      } catch (error) {
        // A pins file we cannot write (a read-only home, a sandbox without write permission) must
        // not make every connection fail: the key still matched the relay's PeerKey inside TLS.
        options.warn(`could not record ${raw.remoteAddress}'s key in the pins file (${(error as Error).message}); trusting it for this connection only`);
        pin = { status: 'new' };
      }
      if (pin.status === 'changed') {
        const message =
          `${raw.remoteAddress}'s identity key changed: pinned ${pin.pinned}, now ${announced}. It may be another machine at that address, or someone in the middle. ` +
          `Refused. If the change is expected (the peer made a new key), forget the pin: alphanet pins forget ${raw.remoteAddress}`;
        options.warn(message);
        throw new ClientError('ERR_E2E_PEER_KEY_CHANGED', message);
      }
    }
  } catch (error) {
    raw.destroy();
    socket.destroy();
    throw error;
  }
  secure = new SecureConnection(raw, socket, rawStream);
  return secure;
}

/**
 * The raw connection as the stream TLS reads and writes records on. Reads pull from the raw
 * connection only while TLS wants more (so an application that stops reading stops granting
 * window, as without TLS); a raw failure is reported only after the data that came before it,
 * so TLS sees a peer's alert before the abort that follows it. Its end and destruction do not
 * close the raw connection: the SecureConnection decides that.
 */
function rawRecordStream(raw: VirtualConnection, notEncrypting: () => void, failed: (error: ClientError) => void): Duplex {
  let reading = false;
  /** Bytes of the peer's preamble (preamble.ts) still to check before TLS records. */
  let preamble = 0;
  const stream: Duplex = new Duplex({
    writableHighWaterMark: DUPLEX_WRITABLE_HIGH_WATER_MARK_BYTES,
    readableHighWaterMark: DUPLEX_READABLE_HIGH_WATER_MARK_BYTES,
    read() {
      if (!reading) void pump();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      raw.send(chunk).then(() => callback(), callback);
    },
    final(callback) {
      raw.end().then(() => callback(), callback);
    },
  });
  async function pump(): Promise<void> {
    reading = true;
    try {
      for (;;) {
        // What has arrived goes in at once; a promise only when the queue is empty.
        const chunk = raw.takeChunk() ?? (await raw.read());
        if (stream.destroyed) return;
        if (chunk === null) {
          stream.push(null);
          return;
        }
        let records = chunk;
        if (preamble < E2E_PREAMBLE.length) {
          const n = Math.min(E2E_PREAMBLE.length - preamble, chunk.length);
          for (let i = 0; i < n; i++) {
            if (chunk[i] !== E2E_PREAMBLE[preamble + i]) {
              notEncrypting();
              return;
            }
          }
          preamble += n;
          records = chunk.subarray(n);
          if (records.length === 0) continue;
        }
        if (!stream.push(records)) return;
      }
    } catch (error) {
      failed(error as ClientError);
    } finally {
      reading = false;
    }
  }
  return stream;
}

/** The SocketClosed reason that tells the peer why this end failed the connection (§8). */
function closeReasonFor(error: ClientError): CloseReason {
  if (error.code === 'ERR_E2E_INTEGRITY') return CloseReason.E2eIntegrity;
  if (error.code === 'ERR_E2E_TRUNCATED') return CloseReason.E2eTruncated;
  return CloseReason.Error;
}
