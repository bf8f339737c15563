/**
 * The client's identity: a persistent Ed25519 key pair (node:crypto, i.e. OpenSSL) kept as a
 * PKCS#8 PEM file readable by its owner only. It proves the client at Hello (docs/PROTOCOL.md
 * §2a) and, on a relay in `--identity-mode key`, is what the client's virtual IP is tied to.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatPublicKey, identityProofMessage } from '../../protocol/identity-proof.ts';
import { ClientError } from './errors.ts';

/** File name of the identity in the config directory. */
export const IDENTITY_FILE_NAME = 'identity';

/** A loaded identity. */
export interface Identity {
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The private key; never leaves the process. */
  readonly privateKey: KeyObject;
  /** The public key as unpadded base64url (what `alphanet identity show`, the pins file and the relay's store show). */
  readonly fingerprint: string;
  /** Where it was read from, if from a file. */
  readonly path: string | undefined;
}

/**
 * The config directory: `$ALPHANET_CONFIG_DIR`, else `$XDG_CONFIG_HOME/alphanet`, else
 * `~/.config/alphanet`.
 */
export function configDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ALPHANET_CONFIG_DIR) return path.resolve(env.ALPHANET_CONFIG_DIR);
  if (env.XDG_CONFIG_HOME) return path.join(path.resolve(env.XDG_CONFIG_HOME), 'alphanet');
  return path.join(os.homedir(), '.config', 'alphanet');
}

/** The default identity file, `<config directory>/identity`. */
export function defaultIdentityPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDirectory(env), IDENTITY_FILE_NAME);
}

/** An identity from a private key. */
export function identityFromPrivateKey(privateKey: KeyObject, file?: string): Identity {
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ClientError('ERR_IDENTITY', `${file ?? 'the identity'} is a ${privateKey.asymmetricKeyType} key, not Ed25519`);
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = new Uint8Array(Buffer.from(jwk.x as string, 'base64url'));
  return { publicKey, privateKey, fingerprint: formatPublicKey(publicKey), path: file };
}

/** A fresh identity kept in memory only (specs, throwaway clients). */
export function generateIdentity(): Identity {
  return identityFromPrivateKey(generateKeyPairSync('ed25519').privateKey);
}

/** Signs a relay's Challenge (§2a). */
export function signChallenge(identity: Identity, challenge: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, identityProofMessage(challenge), identity.privateKey));
}

/**
 * Reads the identity at `file`, creating it (and its directory, mode 0700) when there is none.
 * The file is written whole under a temporary name and linked into place, so two processes
 * starting at once agree on one key and no reader sees half a file. A file others can read is
 * refused (ERR_IDENTITY), as ssh refuses such a key: it would let them be this client.
 */
export async function loadIdentity(file: string = defaultIdentityPath()): Promise<Identity> {
  const where = path.resolve(file);
  let pem: string;
  try {
    pem = await readFile(where, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw identityError(where, error);
    return createIdentityFile(where);
  }
  try {
    const mode = (await stat(where)).mode;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new ClientError(
        'ERR_IDENTITY',
        `${where} is readable by others (mode ${(mode & 0o777).toString(8)}); anyone who reads it can be this client. Run: chmod 600 ${where}`,
      );
    }
    return identityFromPrivateKey(createPrivateKey(pem), where);
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw new ClientError('ERR_IDENTITY', `${where} is not an Ed25519 private key (PKCS#8 PEM): ${(error as Error).message}`, { cause: error });
  }
}

async function createIdentityFile(where: string): Promise<Identity> {
  const identity = generateIdentity();
  const pem = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const temp = `${where}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await mkdir(path.dirname(where), { recursive: true, mode: 0o700 });
    await writeFile(temp, pem, { mode: 0o600, flag: 'wx' });
    await chmod(temp, 0o600);
    try {
      await link(temp, where);
    } catch (error) {
      // Another process made it first: use theirs.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return await loadIdentity(where);
      throw error;
    }
    return { ...identity, path: where };
  } catch (error) {
    if (error instanceof ClientError) throw error;
    throw identityError(where, error);
  } finally {
    await unlink(temp).catch(() => {});
  }
}

function identityError(where: string, error: unknown): ClientError {
  return new ClientError('ERR_IDENTITY', `cannot read or create the identity ${where}: ${(error as Error).message}`, { cause: error });
}
