/**
 * Identity keys and end-to-end encryption on the Node platform (platform.ts IdentityPlatform):
 * identity.ts (node:crypto, node:fs), e2e/ (node:crypto, sodium-native). Only connect.ts imports this, so none of
 * it reaches the browser bundle.
 */
import path from 'node:path';
import type { Logger } from '../logger.ts';
import { defaultIdentityPath, loadIdentity, signChallenge, type Identity } from './identity.ts';
import { KnownPeers, KNOWN_PEERS_FILE_NAME } from './e2e/known-peers.ts';
import type { secureConnection as SecureConnectionFn } from './e2e/secure-connection.ts';
import type { ClientIdentity, IdentityPlatform, PeerPins } from './platform.ts';

/** True under Deno: e2e stays off there (sodium-native's native addon, which the handshake needs, is untried under Deno). */
const RUNNING_ON_DENO = 'Deno' in globalThis;

/** Why a default identity file could not be made: permissions, not a broken file. */
const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'NotCapable', 'PermissionDenied']);

/** The identity `connect()` was given, loaded. */
export async function resolveIdentity(option: string | Identity | false | undefined, logger?: Logger): Promise<Identity | undefined> {
  if (option === false) return undefined;
  if (typeof option === 'string') return loadIdentity(option);
  if (option !== undefined) return option;
  try {
    return await loadIdentity(defaultIdentityPath());
  } catch (error) {
    // Nobody asked for this file: where it cannot be created (a read-only home, Deno without
    // --allow-write) the client goes on without an identity, saying so, rather than not at all.
    // Its peers then see no key, and an e2e peer refuses it clearly (ERR_E2E_PEER_KEY).
    const cause = (error as { cause?: { code?: string; name?: string } }).cause;
    if (!NOT_WRITABLE.has(cause?.code ?? cause?.name ?? '')) throw error;
    logger?.warn({ err: error }, 'no identity key (the default file cannot be created): connecting without one, unencrypted');
    return undefined;
  }
}

/**
 * The e2e layer, imported once. Each `import()` call, even of a module already loaded, goes
 * through the module loader (with a loader such as tsx, a message to its thread and back): per
 * connection that was ~4 % of an e2e connect's CPU.
 */
let secureModule: Promise<{ secureConnection: typeof SecureConnectionFn }> | undefined;

// The client hands back what load() gave it: an Identity (identity.ts) with its private key.
const full = (identity: ClientIdentity): Identity => identity as Identity;

export const NODE_IDENTITY: IdentityPlatform = {
  load: (option, logger) => resolveIdentity(option === undefined || option === false || typeof option === 'string' ? option : full(option), logger),
  signChallenge: (identity, challenge) => signChallenge(full(identity), challenge),
  knownPeers(option, identity): PeerPins | undefined {
    if (option === false) return undefined;
    const file = option ?? (identity?.path === undefined ? undefined : path.join(path.dirname(identity.path), KNOWN_PEERS_FILE_NAME));
    return file === undefined ? undefined : new KnownPeers(file);
  },
  // Loaded on the first encrypted connection, not with the client: the handshake's libsodium is a
  // native addon, which a runtime without it (Deno without --allow-ffi, where e2e is off) must
  // never be made to load.
  secureConnection: async (raw, options) => {
    secureModule ??= (import('./e2e/secure-connection.ts') as Promise<{ secureConnection: typeof SecureConnectionFn }>).catch((error: unknown) => {
      // Tried again by the next connection (a failed load is not kept).
      secureModule = undefined;
      throw error;
    });
    const { secureConnection } = await secureModule;
    return secureConnection(raw, { ...options, identity: full(options.identity), pins: options.pins as KnownPeers | undefined });
  },
  e2eByDefault: !RUNNING_ON_DENO,
};
