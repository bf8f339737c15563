/**
 * Trust in a relay's TLS key, as ssh trusts a host key (issue 12): the first connection to a
 * relay address pins the fingerprint the relay presents (protocol/fingerprint.ts: SHA-256 of the
 * certificate's public key) in the known-relays file; later connections must present the same
 * one. An explicit fingerprint (`tls.fingerprint`, `--relay-fingerprint`) replaces the file's
 * say for that connection and, when it matches, becomes the pin. No certificate authority is
 * consulted: the pin is the whole check, and it runs before the client sends a byte of protocol.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { formatFingerprint, parseFingerprint } from '../../protocol/index.ts';
import { ClientError, RelayFingerprintError } from './errors.ts';

/** The file's name in the config directory. */
export const KNOWN_RELAYS_FILE = 'known-relays';

/** How the client trusts the relay's TLS key: {@link ConnectOptions.tls}. */
export interface RelayTrustOptions {
  /**
   * The relay's fingerprint (`sha256:AB:…`, as it prints it; case and colons free). Only this key
   * is accepted, and on success it replaces the pin in the known-relays file.
   * @default undefined (trust on first use, then the pin)
   */
  fingerprint?: string;
  /** The known-relays file. @default knownRelaysPath(): `$ALPHANET_CONFIG_DIR/known-relays`, else `$XDG_CONFIG_HOME/alphanet/known-relays`, else `~/.config/alphanet/known-relays` */
  knownRelaysFile?: string;
  /** Called when a relay is pinned on first use (the CLI says so on stderr). @default none */
  onPinned?: (pin: { relay: string; fingerprint: string; file: string }) => void;
}

/** The client's config directory: ALPHANET_CONFIG_DIR, else `$XDG_CONFIG_HOME/alphanet`, else `~/.config/alphanet`. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ALPHANET_CONFIG_DIR) return env.ALPHANET_CONFIG_DIR;
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'alphanet');
}

/** Where the known-relays file is, by default. */
export function knownRelaysPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), KNOWN_RELAYS_FILE);
}

/** The fingerprint of the key a TLS connection's peer presented. */
export function peerFingerprint(socket: tls.TLSSocket): string | undefined {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined;
  return formatFingerprint(createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest());
}

/** The file's pins, relay address → fingerprint; an absent file holds none. Lines it cannot read are skipped. */
export async function readKnownRelays(file: string): Promise<Map<string, string>> {
  const pins = new Map<string, string>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return pins;
    throw new ClientError('ERR_INVALID_ARGUMENT', `cannot read the known-relays file ${file}: ${(error as Error).message}`, { cause: error });
  }
  for (const line of text.split('\n')) {
    const [relay, value] = line.trim().split(/\s+/);
    if (!relay || relay.startsWith('#') || value === undefined) continue;
    const fingerprint = parseFingerprint(value);
    if (fingerprint !== undefined) pins.set(relay, fingerprint);
  }
  return pins;
}

/**
 * Pins `fingerprint` for `relay`, replacing any pin it had. Written whole to a temporary file and
 * renamed over the old one, so a reader never sees half a file; two clients pinning at the same
 * moment may lose one pin, which is made again on that relay's next connection.
 */
export async function pinRelay(file: string, relay: string, fingerprint: string): Promise<void> {
  const pins = await readKnownRelays(file);
  pins.set(relay, fingerprint);
  const lines = ['# AlphaNET known relays: "HOST:PORT sha256:…" per line (docs/CLIENT.md "Trust on first use")'];
  for (const [address, value] of pins) lines.push(`${address} ${value}`);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, `${lines.join('\n')}\n`, { mode: 0o644 });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new ClientError('ERR_INVALID_ARGUMENT', `cannot write the known-relays file ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Checks the key `socket`'s relay presented against the trust for `relay` (its address as the
 * client was given it, `HOST:PORT`), pinning it on first use. Throws a RelayFingerprintError when
 * it is not the trusted one.
 */
export async function checkRelayTrust(socket: tls.TLSSocket, relay: string, trust: RelayTrustOptions): Promise<void> {
  const actual = peerFingerprint(socket);
  if (actual === undefined) throw new ClientError('ERR_RELAY_UNREACHABLE', `the relay at ${relay} presented no TLS certificate`);
  const file = trust.knownRelaysFile ?? knownRelaysPath();
  if (trust.fingerprint !== undefined) {
    const expected = parseFingerprint(trust.fingerprint);
    if (expected === undefined) throw new ClientError('ERR_INVALID_ARGUMENT', `"${trust.fingerprint}" is not a relay fingerprint (sha256: and 32 hex pairs, as the relay prints it)`);
    if (actual !== expected) {
      throw new RelayFingerprintError(
        'ERR_RELAY_FINGERPRINT_MISMATCH',
        `the relay at ${relay} presented TLS key ${actual}, not ${expected} as asked (--relay-fingerprint); nothing was sent to it`,
        { expected, actual },
      );
    }
    const pins = await readKnownRelays(file);
    if (pins.get(relay) !== actual) await pinRelay(file, relay, actual);
    return;
  }
  const pins = await readKnownRelays(file);
  const pinned = pins.get(relay);
  if (pinned === actual) return;
  if (pinned === undefined) {
    await pinRelay(file, relay, actual);
    trust.onPinned?.({ relay, fingerprint: actual, file });
    return;
  }
  throw new RelayFingerprintError(
    'ERR_RELAY_FINGERPRINT_CHANGED',
    `the relay at ${relay} presented TLS key ${actual}, but ${file} pins ${pinned} for it: ` +
      `someone may be intercepting the connection, or the relay's key was replaced. Nothing was sent to it. ` +
      `If the relay's operator confirms the new key, accept it with --relay-fingerprint ${actual} ` +
      `(connect({ tls: { fingerprint } })), or delete the line for ${relay} from ${file}`,
    { expected: pinned, actual, file },
  );
}
