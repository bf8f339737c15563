/**
 * The transport's AEAD (docs/SECURITY.md "Records"): AES-256-GCM from node:crypto (OpenSSL, with
 * the CPU's AES instructions), one key per direction, a 64-bit counter as the nonce.
 *
 * The two directions' keys are HKDF-SHA-256 of the Noise split keys, salted with the handshake
 * hash and labelled, so they are bound to this handshake's transcript. The nonce is 4 zero
 * bytes and the big-endian count of messages sealed before in that direction: both ends count, so
 * a message replayed, reordered or dropped on the way is opened with the wrong nonce and fails
 * authentication; nothing is ever accepted out of place. Every REKEY_INTERVAL (2^20) messages
 * both ends replace that direction's key by HKDF of it, in lockstep, erasing the old one.
 *
 * Why AES-256-GCM and not the handshake library's ChaCha20-Poly1305 CipherState: sealing and
 * opening the same 64 KiB messages in one thread measured ~0.75 CPU-s/GB against ~1.6 (its
 * CipherState) or ~1.4 (libsodium called directly) on the bench machine. The CipherState also
 * caps a message at 65535 bytes and writes only a 32-bit counter into the nonce.
 *
 * Who runs AES-GCM: OpenSSL in both cases. The native module (native-aead.ts) when it was built:
 * one cipher context per key, sealing into a buffer that is not zero-filled first, opening in
 * place; about half node:crypto's CPU per byte (~0.45 against ~0.86 CPU-s/GB sealed and opened
 * on the bench machine), which allocates every output twice and makes a cipher object per
 * message. Otherwise node:crypto. The records are the same bytes either way.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { nativeAead, type NativeAead, type NativeContext } from './native-aead.ts';
import { RECORD_HEAD_BYTES, TAG_BYTES, writeRecordHead, type RecordType } from './records.ts';

const CIPHER = 'aes-256-gcm';
const NONCE_BYTES = 12;
/** The HKDF label of the transport keys: a key made for anything else is never this one. */
const KEY_LABEL = 'alphanet-e2e/1 AES-256-GCM';
const KEY_LABEL_BYTES = new TextEncoder().encode(KEY_LABEL);
/** Counting beyond this loses precision in a double; a connection never gets near it (2^53 messages). */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;
/**
 * Messages sealed under one key before both ends replace it, in lockstep, by HKDF of it (they
 * count alike). 2^20 messages of at most 64 KiB are at most 64 GiB (2^32 AES blocks) per key,
 * well inside AES-GCM's usage limits (~2^36 blocks, ~1 TiB, per key); one HKDF per 2^20 messages
 * costs nothing measurable.
 */
export const REKEY_INTERVAL = 2 ** 20;
const REKEY_LABEL = 'alphanet-e2e/1 rekey';

/** The key after `key`, which is erased. */
function nextKey(key: Buffer): Buffer {
  const next = Buffer.from(hkdfSync('sha256', key, new Uint8Array(0), REKEY_LABEL, 32));
  key.fill(0);
  return next;
}

/** The transport's two keys, as each end uses them. */
export interface TransportKeys {
  send: Buffer;
  receive: Buffer;
}

/**
 * Both directions' keys from the Noise split (`tx`, `rx` as this end holds them) and the handshake
 * hash, in one HKDF: the initiator-to-responder key first, so both ends derive the same 64 bytes.
 */
export function transportKeys(tx: Uint8Array, rx: Uint8Array, handshakeHash: Uint8Array, initiator: boolean): TransportKeys {
  const [toResponder, toInitiator] = initiator ? [tx, rx] : [rx, tx];
  const ikm = Buffer.concat([toResponder, toInitiator]);
  // Natively where built (the same HKDF, without node:crypto's KeyObject per call: ~10 µs less per end).
  let okm: Buffer;
  if (nativeAead !== undefined) {
    okm = Buffer.allocUnsafeSlow(64);
    nativeAead.hkdf('sha256', handshakeHash, ikm, KEY_LABEL_BYTES, okm);
  } else {
    okm = Buffer.from(hkdfSync('sha256', ikm, handshakeHash, KEY_LABEL, 64));
  }
  ikm.fill(0);
  const first = okm.subarray(0, 32);
  const second = okm.subarray(32);
  return initiator ? { send: first, receive: second } : { send: second, receive: first };
}

/** Thrown when a sealed message does not open: altered, replayed, reordered or dropped. */
export class SealError extends Error {
  override name = 'SealError';
}

/**
 * One direction's key and nonce, message by message, kept alike at both ends: the nonce is the
 * message's 64-bit count, and the key is replaced every `rekeyEvery` messages.
 */
class KeySchedule {
  #key: Buffer;
  readonly #nonce = Buffer.alloc(NONCE_BYTES);
  readonly #rekeyEvery: number;
  readonly #encrypt: boolean;
  readonly #aead: NativeAead | undefined;
  #count = 0;
  /** The native context of #key, made on first use and replaced with the key. */
  #context: NativeContext | undefined;

  constructor(key: Buffer, rekeyEvery: number, encrypt: boolean, aead: NativeAead | undefined) {
    this.#key = key;
    this.#rekeyEvery = rekeyEvery;
    this.#encrypt = encrypt;
    this.#aead = aead;
  }

  /** The native module these messages use, or undefined for node:crypto. */
  get aead(): NativeAead | undefined {
    return this.#aead;
  }

  /** Steps to the next message; its key and nonce are then {@link key} and {@link nonce}. */
  next(): void {
    const count = this.#count++;
    if (count >= MAX_COUNT) throw new SealError('the message counter is exhausted');
    if (count > 0 && count % this.#rekeyEvery === 0) {
      this.#key = nextKey(this.#key);
      if (this.#context !== undefined) {
        // The old key's schedule is cleansed now, as the old key was.
        this.#aead!.dispose(this.#context);
        this.#context = undefined;
      }
    }
    this.#nonce.writeUInt32BE(Math.floor(count / 0x1_0000_0000), 4);
    this.#nonce.writeUInt32BE(count >>> 0, 8);
  }

  get key(): Buffer {
    return this.#key;
  }

  get nonce(): Buffer {
    return this.#nonce;
  }

  /** The native context of the current key (only when {@link aead} is set). */
  context(): NativeContext {
    return (this.#context ??= this.#aead!.context(this.#key, this.#encrypt));
  }

  /** Frees the native context now (its key schedule is cleansed) rather than at garbage collection. */
  dispose(): void {
    if (this.#context === undefined) return;
    this.#aead!.dispose(this.#context);
    this.#context = undefined;
  }
}

/** Seals this end's messages, in order. */
export class Sealer {
  readonly #keys: KeySchedule;

  /**
   * `rekeyEvery` is for specs (both ends must use the same), and `aead` too: the native module
   * when it was built, else node:crypto (undefined); both make the same records.
   */
  constructor(key: Buffer, rekeyEvery = REKEY_INTERVAL, aead: NativeAead | undefined = nativeAead) {
    this.#keys = new KeySchedule(key, rekeyEvery, true, aead);
  }

  /** Cleanses the native key schedule now (the connection is over); sealing again remakes it. */
  dispose(): void {
    this.#keys.dispose();
  }

  /**
   * The whole record (head, ciphertext, tag) of `plaintext` as a message of `type`, in one buffer:
   * for the empty records (end marker, key confirmation) sent with send(); data goes as pieces.
   */
  seal(type: RecordType, plaintext: Uint8Array): Buffer {
    return Buffer.concat(this.sealPieces(type, plaintext));
  }

  /**
   * The same record as {@link seal}, as its pieces: the head, then the body (with the native
   * module one buffer, ciphertext and tag; with node:crypto the ciphertext, absent when empty,
   * and the tag), for a raw connection that writes them back to back (VirtualConnection.sendPieces). OpenSSL
   * encrypts into a buffer of its own; joining it with head and tag was a 64 KiB allocation and
   * copy per record (~0.1–0.2 CPU-s/GB of the sender's, and the garbage collector's, time).
   */
  sealPieces(type: RecordType, plaintext: Uint8Array): Buffer[] {
    const n = plaintext.length;
    const head = Buffer.allocUnsafe(RECORD_HEAD_BYTES);
    writeRecordHead(head, 0, type, n + TAG_BYTES);
    const keys = this.#keys;
    keys.next();
    const aead = keys.aead;
    if (aead !== undefined) {
      // Ciphertext and tag in one buffer, never zero-filled: every byte of it is written.
      const body = Buffer.allocUnsafe(n + TAG_BYTES);
      aead.seal(keys.context(), keys.nonce, head, plaintext, body);
      return [head, body];
    }
    const cipher = createCipheriv(CIPHER, keys.key, keys.nonce);
    cipher.setAAD(head);
    const pieces = [head];
    if (n > 0) pieces.push(cipher.update(plaintext));
    const last = cipher.final();
    if (last.length > 0) pieces.push(last);
    pieces.push(cipher.getAuthTag());
    return pieces;
  }
}

/** Opens the peer's messages, in order. */
export class Opener {
  readonly #keys: KeySchedule;

  /** As {@link Sealer}'s. */
  constructor(key: Buffer, rekeyEvery = REKEY_INTERVAL, aead: NativeAead | undefined = nativeAead) {
    this.#keys = new KeySchedule(key, rekeyEvery, false, aead);
  }

  /** As {@link Sealer.dispose}. */
  dispose(): void {
    this.#keys.dispose();
  }

  /**
   * The plaintext of the next message, in pieces (one per piece of ciphertext, none when empty);
   * throws SealError unless it is exactly what the peer sealed next. Nothing is returned before
   * the tag is checked. The pieces are the caller's to give up: with the native module they are
   * decrypted in place (the plaintext handed back is views of them), and after a failure they
   * hold neither the ciphertext nor anything usable.
   */
  open(head: Uint8Array, pieces: readonly Uint8Array[]): Uint8Array[] {
    let bodyBytes = 0;
    for (const piece of pieces) bodyBytes += piece.length;
    if (bodyBytes < TAG_BYTES) throw new SealError('a sealed message shorter than its tag');
    const keys = this.#keys;
    keys.next();
    if (keys.aead !== undefined) return this.#openInPlace(keys.aead, head, pieces, bodyBytes - TAG_BYTES);
    const decipher = createDecipheriv(CIPHER, keys.key, keys.nonce);
    decipher.setAAD(head);
    const plaintext: Buffer[] = [];
    const tag = Buffer.allocUnsafe(TAG_BYTES);
    let ciphertextLeft = bodyBytes - TAG_BYTES;
    let tagFilled = 0;
    for (const piece of pieces) {
      const n = Math.min(piece.length, ciphertextLeft);
      if (n > 0) {
        const out = decipher.update(piece.subarray(0, n));
        if (out.length > 0) plaintext.push(out);
        ciphertextLeft -= n;
      }
      if (n < piece.length) {
        tag.set(piece.subarray(n), tagFilled);
        tagFilled += piece.length - n;
      }
    }
    decipher.setAuthTag(tag);
    try {
      // The tag is checked here: nothing decrypted is handed on before it passed.
      decipher.final();
    } catch (error) {
      throw new SealError('authentication failed', { cause: error });
    }
    return plaintext;
  }

  /** {@link open} with the native module: the ciphertext pieces become the plaintext. */
  #openInPlace(aead: NativeAead, head: Uint8Array, pieces: readonly Uint8Array[], ciphertextBytes: number): Uint8Array[] {
    const ciphertext: Uint8Array[] = [];
    let tag: Uint8Array | undefined;
    let left = ciphertextBytes;
    for (const piece of pieces) {
      const n = Math.min(piece.length, left);
      if (n > 0) ciphertext.push(n === piece.length ? piece : piece.subarray(0, n));
      left -= n;
      if (n < piece.length) {
        const rest = piece.subarray(n);
        // The tag is a view when it lies in one piece, else its parts are joined.
        tag = tag === undefined ? rest : Buffer.concat([tag, rest]);
      }
    }
    const keys = this.#keys;
    let opened: boolean;
    try {
      opened = aead.open(keys.context(), keys.nonce, head, ciphertext, tag!);
    } catch (error) {
      // The module refused (it never should with these arguments): the record is not opened,
      // and the connection fails as for any record that does not open.
      throw new SealError(`the native AEAD failed: ${(error as Error).message}`, { cause: error });
    }
    if (!opened) throw new SealError('authentication failed');
    return ciphertext;
  }
}
