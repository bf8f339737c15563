/**
 * End-to-end encryption of a virtual connection (docs/SECURITY.md "End-to-end encryption"): after
 * the Noise IK handshake between the two identity keys (handshake.ts), every payload crosses the
 * raw connection as sealed records (records.ts, sealing.ts), and a sealed end marker says the
 * sender ended cleanly, so a cut stream is told apart from a finished one.
 *
 * The user holds a {@link SecureConnection}: a VirtualConnection whose sends, reads, end and
 * close go through the records, while the raw connection beneath it (the client's, bound to the
 * connection id) carries them with the protocol's flow control.
 */
import { ChunkQueue } from '../chunk-queue.ts';
import { VirtualConnection } from '../connection.ts';
import { ClientError } from '../errors.ts';
import { CloseReason } from '../../../protocol/index.ts';
import { handshake, type SecureOptions } from './handshake.ts';
import { MAX_RECORD_PLAINTEXT_BYTES, RecordFormatError, RecordType, type RecordReader } from './records.ts';
import { SealError, type Opener, type Sealer } from './sealing.ts';

export type { SecureOptions } from './handshake.ts';

const UTF8 = new TextEncoder();
const EMPTY = new Uint8Array(0);
const ignore = (): void => {};

/**
 * Decrypted bytes kept for the application before this end stops taking records from the raw
 * connection (which then stops granting window, so a reader that stops stops the sender).
 */
export const PLAINTEXT_QUEUE_BYTES = 64 * 1024;

/**
 * Plaintext sealed ahead of what the raw connection has taken, per send(): a large send() is
 * sealed and handed on in batches of this many bytes, so it never holds its whole ciphertext.
 */
export const SEAL_BATCH_BYTES = 16 * MAX_RECORD_PLAINTEXT_BYTES;

/**
 * A VirtualConnection carried by sealed records over a raw one. Everything the user calls is
 * plaintext; the window, `receiveWindow` and `bufferedBytes` count the raw (record) bytes beneath.
 */
export class SecureConnection extends VirtualConnection {
  readonly #raw: VirtualConnection;
  readonly #sealer: Sealer;
  readonly #opener: Opener;
  readonly #reader: RecordReader;
  readonly #peer: string;
  #error: ClientError | undefined;
  /** The peer's sealed end marker arrived: no more data comes. */
  #endSeen = false;
  #endEmitted = false;
  #closeEmitted = false;
  #rawClosed = false;
  /** The raw connection's reads are over (its read() gave null). */
  #rawEnded = false;
  /** An await on the raw connection's read() is outstanding (it has one waiter). */
  #rawReading = false;
  /** Re-entry guard: a listener woken by #pull may call read(), which pulls. */
  #pulling = false;
  /** close() or destroy() was called here: reads end, and 'close' needs no end from the peer. */
  #local = false;
  /** end() (or close()) was called: our end marker is sealed or on its way. */
  #writeEnded = false;
  /** Readers waiting in read(): all are woken, each takes a chunk or waits again. */
  #waiters: Array<() => void> = [];
  /** Decrypted chunks not read yet, #plainBytes in all. */
  readonly #plain = new ChunkQueue();
  #plainBytes = 0;
  #sendTail: Promise<void> = Promise.resolve();
  #sendsPending = 0;
  /** send() calls whose records are not all sealed and handed to the raw connection yet. */
  #unsealed = 0;

  /** @internal Use {@link secureConnection}. */
  constructor(raw: VirtualConnection, sealer: Sealer, opener: Opener, reader: RecordReader) {
    // The raw connection's host and actor: one lifecycle for both. Every method that would write
    // through the host is overridden, so no plaintext can reach the wire from this object.
    const parts = raw.layerParts();
    super(parts.host, parts.actor, raw.connectionId, {
      localAddress: raw.localAddress,
      localPort: raw.localPort,
      remoteAddress: raw.remoteAddress,
      remotePort: raw.remotePort,
      peerKey: raw.peerKey,
    });
    this.#raw = raw;
    this.#sealer = sealer;
    this.#opener = opener;
    this.#reader = reader;
    this.#peer = `${raw.remoteAddress}:${raw.remotePort}`;
    // The raw connection may have closed already: the peer's reply, its data, its end marker and
    // SocketClosed can come in one read, or while the pins were written. Its 'close' has fired
    // then, so the same steps run once the caller holds this object.
    const closedBefore = raw.closed;
    if (!closedBefore) raw.on('close', (error) => this.#rawClose(error));
    // Records that came with the handshake's last message, once the caller holds this object.
    setImmediate(() => (closedBefore ? this.#rawClose(raw.error) : this.#pull()));
  }

  /** The raw connection closed (`error` if it failed). */
  #rawClose(error: ClientError | undefined): void {
    this.#rawClosed = true;
    // What arrived before the failure is opened first (a peer's data before its abort is
    // still its data), then the failure is ours, unless opening found one of its own.
    this.#pull();
    if (error !== undefined) this.#fail(error, false);
    this.#wake();
    this.#maybeClose();
  }

  override get error(): ClientError | undefined {
    return this.#error;
  }

  /** The raw connection's receive window, in record bytes (docs/SECURITY.md). */
  override get receiveWindow(): number {
    return this.#raw.receiveWindow;
  }

  /** Raw bytes (records) received and not yet opened, plus plaintext opened and not read. */
  override get bufferedBytes(): number {
    return this.#raw.bufferedBytes + this.#reader.pendingBytes + this.#plainBytes;
  }

  override send(data: Uint8Array | string): Promise<void> {
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) bytes = data;
    else if (typeof data === 'string') bytes = UTF8.encode(data);
    else return super.send(data);
    if (this.#error) return Promise.reject(this.#error);
    // Closed: the raw connection says why (a peer's close is ERR_CLOSED_BY_PEER), writing nothing.
    if (this.closed) return this.#raw.send(bytes);
    if (this.#writeEnded) return Promise.reject(new ClientError('ERR_SOCKET_STATE', 'the connection was ended for writing (end() was called)'));
    // Sends are sealed in call order (the nonce is a counter): one after another, starting at
    // once when nothing is ahead.
    this.#unsealed++;
    const run = this.#sendsPending === 0 ? this.#sendNow(bytes) : this.#sendTail.then(() => this.#sendNow(bytes));
    this.#sendsPending++;
    this.#sendTail = run.then(this.#sendSettled, this.#sendSettled);
    return run;
  }

  readonly #sendSettled = (): void => {
    this.#sendsPending--;
  };

  /**
   * Seals `bytes` into messages of at most 64 KiB and hands them to the raw connection, which
   * sends them in order under its window; resolves once it took the last (the same backpressure
   * as without encryption).
   */
  async #sendNow(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    let sealed = false;
    const allSealed = (): void => {
      if (sealed) return;
      sealed = true;
      this.#unsealed--;
    };
    try {
      while (offset < bytes.length) {
        if (this.#error) throw this.#error;
        if (this.closed) return await this.#raw.send(bytes.subarray(offset));
        const batchEnd = Math.min(bytes.length, offset + SEAL_BATCH_BYTES);
        let last: Promise<void> | undefined;
        while (offset < batchEnd) {
          const n = Math.min(MAX_RECORD_PLAINTEXT_BYTES, batchEnd - offset);
          // Only the last one is awaited; the raw connection fails every later send alike.
          last?.catch(ignore);
          last = this.#raw.sendPieces(this.#sealer.sealPieces(RecordType.Data, bytes.subarray(offset, offset + n)));
          offset += n;
        }
        // Every record of this send is with the raw connection, which sends in order: an end
        // marker handed to it now follows them.
        if (offset === bytes.length) allSealed();
        try {
          await last;
        } catch (error) {
          throw this.#error ?? error;
        }
      }
    } finally {
      allSealed();
    }
  }

  /** Half-closes: our sealed end marker, then SocketEnd. The peer can still answer. */
  override async end(): Promise<void> {
    if (this.#writeEnded) return;
    if (this.#error) throw this.#error;
    if (this.closed) return this.#raw.end();
    this.#writeEnded = true;
    if (this.#sendsPending > 0) await this.#sendTail;
    if (this.#error) throw this.#error;
    if (this.closed) return;
    this.#raw.send(this.#sealer.seal(RecordType.End, EMPTY)).catch(ignore);
    await this.#raw.end();
  }

  /**
   * Closes both directions: our end marker after the records already handed to the raw
   * connection (which sends in order), then SocketClosed Normal once the marker went. So
   * `void send(x); close()` delivers x and the peer's reads end cleanly, as without encryption.
   * Data still waiting for the peer's credit (or not sealed yet) is cut, as without encryption,
   * and then no end marker goes (it would come after data that never did): the peer's reads fail
   * with ERR_E2E_TRUNCATED instead of ending cleanly, which is the truth. The marker alone (20
   * bytes) may wait for credit; data never does.
   */
  override close(): void {
    this.#local = true;
    this.#plain.clear();
    this.#plainBytes = 0;
    if (this.#writeEnded || this.#error !== undefined || this.closed || this.#unsealed > 0 || this.#raw.sendsAwaitCredit) {
      this.#writeEnded = true;
      // A plain close even with records cut: the missing end marker tells the peer exactly that
      // (ERR_E2E_TRUNCATED), which says more than an abort.
      this.#raw.closeWithReason(CloseReason.Normal);
      return;
    }
    this.#writeEnded = true;
    const close = (): void => this.#raw.close();
    this.#raw.send(this.#sealer.seal(RecordType.End, EMPTY)).then(close, close);
  }

  override destroy(): void {
    this.#local = true;
    this.#raw.destroy();
  }

  /** @internal Closing with a reason is the raw connection's (SocketClosed, §8). */
  override closeWithReason(reason: CloseReason): void {
    this.#local = true;
    this.#raw.closeWithReason(reason);
  }

  override keepAlive(): void {
    this.#raw.keepAlive();
  }

  override takeChunk(): Uint8Array | undefined {
    let chunk = this.#plain.shift();
    if (chunk === undefined) {
      this.#pull();
      chunk = this.#plain.shift();
      if (chunk === undefined) return undefined;
    }
    this.#plainBytes -= chunk.length;
    if (this.#plainBytes < PLAINTEXT_QUEUE_BYTES) this.#pull();
    return chunk;
  }

  override async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.takeChunk();
      if (chunk !== undefined) return chunk;
      if (this.#error) throw this.#error;
      if (this.#endSeen || (this.#local && this.#rawClosed)) return null;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  /** @internal The first failure wins: reads after the data before it, writes at once. */
  override fail(error: ClientError): void {
    this.#fail(error, true);
  }

  /**
   * Opens the records the raw connection holds until the plaintext queue is full, and keeps one
   * read of the raw connection waiting while it is not, so records are opened as they come and
   * the raw window is granted only as the application reads.
   */
  #pull(): void {
    if (this.#pulling) return;
    this.#pulling = true;
    try {
      while (this.#error === undefined && !this.#local && (this.#endSeen || this.#plainBytes < PLAINTEXT_QUEUE_BYTES)) {
        if (this.#endSeen) {
          // Nothing may follow the peer's end marker: the raw connection is still read to its
          // end, and any byte after the marker fails the connection at both ends.
          if (this.#reader.pendingBytes > 0) {
            this.#fail(
              new ClientError('ERR_E2E_INTEGRITY', `data from ${this.#peer} came after its end-to-end end marker: added on the way; the connection is closed`),
              true,
            );
            break;
          }
          if (this.#rawReading) break;
          const chunk = this.#raw.takeChunk();
          if (chunk !== undefined) {
            this.#reader.push(chunk);
            continue;
          }
          if (!this.#rawEnded && !this.#rawClosed) this.#readRaw();
          break;
        }
        if (this.#openNext()) continue;
        // A raw read() waiting may already hold the next chunk (it took it from the raw queue and
        // its continuation has not run yet): taking one here would put a later chunk before it.
        if (this.#rawReading) break;
        const chunk = this.#raw.takeChunk();
        if (chunk !== undefined) {
          this.#reader.push(chunk);
          continue;
        }
        if (this.#rawEnded) {
          // The raw stream ended without our peer's end marker: cut short on the way.
          this.#fail(
            new ClientError('ERR_E2E_TRUNCATED', `${this.#peer} ended the connection without its end-to-end end marker: its data was cut short on the way (truncated); the connection is closed`),
            true,
          );
          break;
        }
        this.#readRaw();
        break;
      }
    } finally {
      this.#pulling = false;
    }
    // Readers are woken only when one can go on: a reader's own takeChunk() pulls, and waking the
    // others then with nothing for them would set two waiting readers waking each other forever.
    if (this.#plain.length > 0 || this.#endSeen || this.#error !== undefined || (this.#local && this.#rawClosed)) this.#wake();
    this.#maybeClose();
  }

  /** Waits for the raw connection's next chunk (or its end, or failure), then pulls again. */
  #readRaw(): void {
    this.#rawReading = true;
    this.#raw.read().then(
      (chunk) => {
        this.#rawReading = false;
        if (chunk === null) this.#rawEnded = true;
        else this.#reader.push(chunk);
        this.#pull();
      },
      (error: ClientError) => {
        this.#rawReading = false;
        this.#fail(error, false);
      },
    );
  }

  /** Opens the next whole record, if one is here; a record that does not open fails the connection. */
  #openNext(): boolean {
    let record;
    try {
      record = this.#reader.next();
      if (record === undefined) return false;
      if (record.type === RecordType.Handshake || record.type === RecordType.Confirm) throw new SealError('a handshake record after the handshake');
      const plaintext = this.#opener.open(record.head, record.pieces);
      if (record.type === RecordType.End) {
        if (plaintext.length > 0) throw new SealError('an end marker with data');
        this.#endSeen = true;
        this.#emitEnd();
      } else {
        for (const piece of plaintext) {
          this.#plain.push(piece);
          this.#plainBytes += piece.length;
        }
      }
      return true;
    } catch (error) {
      if (!(error instanceof SealError || error instanceof RecordFormatError)) throw error;
      this.#fail(
        new ClientError(
          'ERR_E2E_INTEGRITY',
          `data from ${this.#peer} failed end-to-end authentication (${error.message}): tampered, replayed, reordered or dropped on the way; the connection is closed`,
          { cause: error },
        ),
        true,
      );
      return false;
    }
  }

  #fail(error: ClientError, tellPeer: boolean): void {
    if (this.#error) return;
    this.#error = error;
    // The peer hears why, with the same code (§8 E2eIntegrity, E2eTruncated), or an abort.
    if (tellPeer) this.#raw.closeWithReason(closeReasonFor(error));
    this.#wake();
    this.#maybeClose();
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter();
  }

  /**
   * 'close' once the raw connection is over and the peer's end marker arrived (read or not), or
   * the connection failed, or we closed it ourselves, as a raw connection's 'close' comes with
   * data still unread.
   */
  #maybeClose(): void {
    if (this.#closeEmitted || !this.#rawClosed || !(this.#endSeen || this.#error || this.#local)) return;
    this.#closeEmitted = true;
    // The native key schedules are cleansed now, not whenever the collector frees them.
    this.#sealer.dispose();
    this.#opener.dispose();
    this.emit('close', this.#error);
  }

  /** 'end' once: the peer's end marker, whether or not its data has been read yet. */
  #emitEnd(): void {
    if (this.#endEmitted) return;
    this.#endEmitted = true;
    this.emit('end');
  }
}

/**
 * Runs the end-to-end handshake over `raw` and checks the peer's key (relay-announced, pinned).
 * Resolves with the connection the user gets; rejects with ERR_E2E_* after closing `raw`.
 */
export async function secureConnection(raw: VirtualConnection, options: SecureOptions): Promise<SecureConnection> {
  const { sealer, opener, reader } = await handshake(raw, options);
  return new SecureConnection(raw, sealer, opener, reader);
}

/** The SocketClosed reason that tells the peer why this end failed the connection (§8). */
function closeReasonFor(error: ClientError): CloseReason {
  if (error.code === 'ERR_E2E_INTEGRITY') return CloseReason.E2eIntegrity;
  if (error.code === 'ERR_E2E_TRUNCATED') return CloseReason.E2eTruncated;
  return CloseReason.Error;
}
