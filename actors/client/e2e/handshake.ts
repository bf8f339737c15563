/**
 * The end-to-end handshake over a raw virtual connection (docs/SECURITY.md "End-to-end
 * encryption"): the preamble both ways (preamble.ts), then Noise IK
 * (Noise_IK_25519_ChaChaPoly_BLAKE2b, holepunch's noise-handshake) between the two identity keys
 * in their X25519 form (static-key.ts):
 *
 *   connector (initiator), knowing the acceptor's key:  -> e, es, s, ss
 *   acceptor (responder):                               <- e, ee, se
 *
 * The connector knows the acceptor's key from the relay (PeerKey, docs/PROTOCOL.md §2a) and checks
 * it against its pin before it sends a byte of the handshake; only the holder of that key can
 * answer (es, se). The acceptor learns the connector's key from the first message (s, proven by
 * ss) and checks it equals the key the relay announced and its pin. The prologue binds the
 * handshake to this connection's two virtual endpoints, so a message taken from another
 * connection does not complete it. The split keys become the transport's (sealing.ts).
 *
 * Key confirmation: IK's first message can be replayed. A relay that recorded it can later fake a
 * connection request from the same endpoints, and the acceptor would complete its side with
 * nobody at the other end. So the connector's first sealed message is an empty Confirm record,
 * sent as soon as it has read the reply; only the holder of the connector's ephemeral key (hence
 * only the live connector) can seal it, and the acceptor hands the connection on only once it
 * opened, within the handshake timeout.
 */
import { CloseReason } from '../../../protocol/index.ts';
import type { VirtualConnection } from '../connection.ts';
import { ClientError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import { startTimer, type Clock } from '../timer.ts';
import { PinsUnreadableError, type KnownPeers, type PinCheck } from './known-peers.ts';
import { E2E_PREAMBLE, encryptingEndMismatch } from './preamble.ts';
import { RECORD_HEAD_BYTES, RecordFormatError, RecordReader, RecordType, handshakeRecord, joinPieces, type RawRecord } from './records.ts';
import { Opener, Sealer, transportKeys } from './sealing.ts';
import { createNoise } from './noise-state.ts';
import { curveFor, peerStaticKey, staticKeyPair } from './static-key.ts';

/** What securing one connection needs. */
export interface SecureOptions {
  identity: Identity;
  /** The connector is the Noise initiator; the acceptor the responder. */
  role: 'connector' | 'acceptor';
  pins: KnownPeers | undefined;
  /** Time the handshake may take before ERR_E2E_HANDSHAKE (the client's requestTimeoutMs). */
  timeoutMs: number;
  clock: Clock | undefined;
  /** Told when a changed key is refused (the client's logger), besides the error itself. */
  warn: (message: string) => void;
}

/** What the transport starts from: its two directions' keys and any record bytes already read. */
export interface HandshakeResult {
  sealer: Sealer;
  opener: Opener;
  reader: RecordReader;
}

/** The protocol label in the prologue; a new construction gets a new one. */
export const E2E_PROTOCOL_LABEL = 'alphanet-e2e/1';

const UTF8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** The prologue of a connection: the label, then the connector's and the acceptor's virtual endpoints. */
export function prologueFor(raw: VirtualConnection, role: 'connector' | 'acceptor'): Uint8Array {
  const local = `${raw.localAddress}:${raw.localPort}`;
  const remote = `${raw.remoteAddress}:${raw.remotePort}`;
  const [initiator, responder] = role === 'connector' ? [local, remote] : [remote, local];
  return UTF8.encode(`${E2E_PROTOCOL_LABEL}\n${initiator}\n${responder}\n`);
}

/**
 * Runs the handshake over `raw` and checks the peer's key (relay-announced, pinned). Resolves with
 * the transport's keys; rejects with ERR_E2E_* after closing `raw` (E2eMismatch for a peer that
 * does not encrypt, an abort otherwise).
 */
export async function handshake(raw: VirtualConnection, options: SecureOptions): Promise<HandshakeResult> {
  const peer = `${raw.remoteAddress}:${raw.remotePort}`;
  const announced = raw.peerKey;
  if (announced === undefined) {
    // A peer without a key cannot encrypt: it is told so (E2eMismatch), as a --no-e2e peer is.
    raw.closeWithReason(CloseReason.E2eMismatch);
    throw new ClientError(
      'ERR_E2E_MISMATCH',
      `${peer} proved no identity key to the relay, so it cannot encrypt end to end and this end does; both ends need an identity (and e2e on), or both must connect with e2e off (--no-e2e)`,
    );
  }
  // The acceptor's preamble goes at once: a plaintext connector waiting to read learns of the
  // mismatch without waiting for us. The connector's goes with its first handshake message.
  if (options.role === 'acceptor') raw.send(E2E_PREAMBLE).catch(() => {});
  let timer: ReturnType<typeof startTimer> | undefined;
  const work = run(raw, options, announced, peer);
  // Whatever the race's loser does later is not a rejection nobody handles.
  work.catch(() => {});
  try {
    const late = new Promise<never>((_, reject) => {
      timer = startTimer(options.clock, options.timeoutMs, () =>
        reject(new ClientError('ERR_E2E_HANDSHAKE', `no end-to-end handshake with ${peer} within ${options.timeoutMs} ms (a peer with e2e off is told at once: ERR_E2E_MISMATCH); the relay or the path is too slow or drops data`)),
      );
    });
    return await Promise.race([work, late]);
  } catch (error) {
    raw.destroy();
    throw error;
  } finally {
    timer?.close();
  }
}

async function run(raw: VirtualConnection, options: SecureOptions, announced: Uint8Array, peer: string): Promise<HandshakeResult> {
  const keyPair = staticKeyPair(options.identity);
  const reader = new RecordReader();
  const incoming = handshakeMessages(raw, reader, peer);
  const expected = peerStaticKey(announced);
  const noise = createNoise('IK', options.role === 'connector', keyPair, { curve: curveFor(keyPair, expected) });
  const prologue = prologueFor(raw, options.role);
  const announcedText = Buffer.from(announced).toString('base64url');
  if (options.role === 'connector') {
    // The pin is asked before a byte of the handshake goes, but a first key is pinned only once
    // the handshake proved it: a relay lying on first contact must not leave its key pinned.
    await checkPin(raw, announcedText, options, 'compare');
    noise.initialise(prologue, expected);
    const first = noise.send();
    const opening = new Uint8Array(E2E_PREAMBLE.length + RECORD_HEAD_BYTES + first.length);
    opening.set(E2E_PREAMBLE);
    opening.set(handshakeRecord(first), E2E_PREAMBLE.length);
    await sendRecord(raw, opening);
    const reply = joinPieces((await incoming.next(RecordType.Handshake)).pieces);
    try {
      noise.recv(reply);
    } catch (error) {
      throw new ClientError(
        'ERR_E2E_PEER_KEY',
        `${peer}'s handshake reply does not prove the key the relay announced (${announcedText}): a relay or network in the middle; refused`,
        { cause: error },
      );
    }
    await checkPin(raw, announcedText, options, 'check');
  } else {
    noise.initialise(prologue);
    const first = joinPieces((await incoming.next(RecordType.Handshake)).pieces);
    try {
      noise.recv(first);
    } catch (error) {
      throw new ClientError(
        'ERR_E2E_PEER_KEY',
        `${peer}'s handshake was not made for this end's key, or not for this connection: the relay announced another key to it (a relay or network in the middle); refused`,
        { cause: error },
      );
    }
    if (Buffer.compare(Buffer.from(noise.rs!), Buffer.from(expected)) !== 0) {
      throw new ClientError(
        'ERR_E2E_PEER_KEY',
        `${peer} proved another key in the handshake (X25519 ${Buffer.from(noise.rs!).toString('base64url')}) than the relay announced (${announcedText}): a relay or network in the middle; refused`,
      );
    }
    await checkPin(raw, announcedText, options, 'check');
    await sendRecord(raw, handshakeRecord(noise.send()));
  }
  if (!noise.complete) throw new ClientError('ERR_E2E_HANDSHAKE', `the end-to-end handshake with ${peer} did not complete`);
  const keys = transportKeys(noise.tx!, noise.rx!, noise.hash!, options.role === 'connector');
  const sealer = new Sealer(keys.send);
  const opener = new Opener(keys.receive);
  noise.tx!.fill(0);
  noise.rx!.fill(0);
  try {
    if (options.role === 'connector') {
      await sendRecord(raw, sealer.seal(RecordType.Confirm, EMPTY));
    } else {
      const confirm = await incoming.next(RecordType.Confirm);
      let plaintext: Uint8Array[];
      try {
        plaintext = opener.open(confirm.head, confirm.pieces);
      } catch (error) {
        throw new ClientError(
          'ERR_E2E_HANDSHAKE',
          `${peer}'s key confirmation does not open: a handshake message replayed or forged by a relay or network in the middle, not a live connector; refused`,
          { cause: error },
        );
      }
      if (plaintext.some((piece) => piece.length > 0)) {
        throw new ClientError('ERR_E2E_HANDSHAKE', `${peer}'s key confirmation carries data, which no connector sends; refused`);
      }
    }
  } catch (error) {
    // The connection is refused: its native key schedules are cleansed now, not at collection.
    sealer.dispose();
    opener.dispose();
    throw error;
  }
  return { sealer, opener, reader };
}

/** Sends a handshake record; a raw connection that cannot take it says why at once. */
async function sendRecord(raw: VirtualConnection, record: Uint8Array): Promise<void> {
  try {
    await raw.send(record);
  } catch (error) {
    throw handshakeFailure(error as ClientError, `${raw.remoteAddress}:${raw.remotePort}`);
  }
}

/** Why the raw connection failed during the handshake, as an e2e error. */
function handshakeFailure(error: ClientError, peer: string): ClientError {
  if (error.code === 'ERR_E2E_MISMATCH') return new ClientError('ERR_E2E_MISMATCH', encryptingEndMismatch(peer), { cause: error });
  if (error.code?.startsWith('ERR_E2E_')) return error;
  return new ClientError(
    'ERR_E2E_HANDSHAKE',
    `the end-to-end handshake with ${peer} failed: ${error.message} (a peer that refuses this end's key, or was asked for a key it does not hold, aborts it)`,
    { cause: error },
  );
}

/**
 * The peer's handshake messages: its preamble is checked first (anything else means it does not
 * encrypt: E2eMismatch both ends, and none of its bytes are taken as a handshake), then records.
 */
function handshakeMessages(raw: VirtualConnection, reader: RecordReader, peer: string): { next(type: RecordType): Promise<RawRecord> } {
  let preamble = 0;
  const notEncrypting = (): ClientError => {
    raw.closeWithReason(CloseReason.E2eMismatch);
    return new ClientError('ERR_E2E_MISMATCH', encryptingEndMismatch(peer));
  };
  return {
    async next(type: RecordType): Promise<RawRecord> {
      for (;;) {
        let record;
        try {
          record = reader.next();
        } catch (error) {
          if (error instanceof RecordFormatError) throw new ClientError('ERR_E2E_HANDSHAKE', `${peer} sent no handshake (${error.message})`);
          throw error;
        }
        if (record !== undefined) {
          if (record.type !== type) throw new ClientError('ERR_E2E_HANDSHAKE', `${peer} sent a record of type ${record.type} before the handshake completed (expected type ${type})`);
          return record;
        }
        let chunk: Uint8Array | null;
        try {
          chunk = raw.takeChunk() ?? (await raw.read());
        } catch (error) {
          throw handshakeFailure(error as ClientError, peer);
        }
        if (chunk === null) throw new ClientError('ERR_E2E_HANDSHAKE', `${peer} closed the connection during the end-to-end handshake`);
        if (preamble < E2E_PREAMBLE.length) {
          const n = Math.min(E2E_PREAMBLE.length - preamble, chunk.length);
          for (let i = 0; i < n; i++) if (chunk[i] !== E2E_PREAMBLE[preamble + i]) throw notEncrypting();
          preamble += n;
          chunk = chunk.subarray(n);
        }
        reader.push(chunk);
      }
    },
  };
}

/**
 * Checks `key` against the pin of the peer's virtual IP (known-peers.ts): `check` pins a first
 * key, `compare` only compares.
 */
async function checkPin(raw: VirtualConnection, key: string, options: SecureOptions, how: 'check' | 'compare'): Promise<void> {
  if (options.pins === undefined) return;
  let pin: PinCheck;
  try {
    pin = await (how === 'check' ? options.pins.check(raw.remoteAddress, key) : options.pins.compare(raw.remoteAddress, key));
  } catch (error) {
    // A pins file we cannot read hides the pin a changed key would be refused by: trusting the
    // key as new would let exactly that key through. Refused.
    if (error instanceof PinsUnreadableError) {
      throw new ClientError(
        'ERR_IDENTITY',
        `${error.message}; the key of ${raw.remoteAddress} cannot be checked against its pin, so the connection is refused. Fix the file's permissions (or move it away to start the pins afresh)`,
        { cause: error },
      );
    }
    // A pins file we cannot write (a read-only home, a sandbox without write permission) must
    // not make every connection fail: the key is still the one the relay announced, proven in
    // the handshake, and no pin says otherwise.
    options.warn(`could not record ${raw.remoteAddress}'s key in the pins file (${(error as Error).message}); trusting it for this connection only`);
    pin = { status: 'new' };
  }
  if (pin.status === 'changed') {
    const message =
      `${raw.remoteAddress}'s identity key changed: pinned ${pin.pinned}, now ${key}. It may be another machine at that address, or someone in the middle. ` +
      `Refused. If the change is expected (the peer made a new key), forget the pin: alphanet pins forget ${raw.remoteAddress}`;
    options.warn(message);
    throw new ClientError('ERR_E2E_PEER_KEY_CHANGED', message);
  }
}
