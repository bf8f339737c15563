/**
 * What a store's entries are keyed by (docs/STORAGE.md "Identity mode"): the client's real IP
 * (`ip`, the seed's rule) or its proven Ed25519 key (`key`, entries `key:<base64url>`). A store
 * keeps one mode for good: its entries mean nothing under the other.
 */
import { isIP } from 'node:net';
import { StoreError } from './errors.ts';

export type IdentityMode = 'ip' | 'key';
export const IDENTITY_MODES: readonly IdentityMode[] = ['ip', 'key'];
/** A store made before modes existed, or without one asked for, is an `ip` store. */
export const DEFAULT_IDENTITY_MODE: IdentityMode = 'ip';

/** Prefix of a key-mode entry; the rest is the 32-byte key as unpadded base64url (43 characters). */
export const KEY_ENTRY_PREFIX = 'key:';
const KEY_ENTRY = /^key:[A-Za-z0-9_-]{43}$/;

/** True when `entry` is a key-mode entry (`key:` and 43 base64url characters). */
export function isKeyEntry(entry: string): boolean {
  return KEY_ENTRY.test(entry);
}

/** True when `entry` can be a store entry of either mode: an IP address or a key entry. */
export function isEntryKey(entry: string): boolean {
  return isIP(entry) !== 0 || isKeyEntry(entry);
}

/** What each mode means, for refusals that must say it. */
const MEANING: Record<IdentityMode, string> = {
  ip: 'each virtual IP belongs to a real IP address (--identity-mode ip)',
  key: "each virtual IP belongs to a client's identity key, wherever it connects from (--identity-mode key)",
};

/** The refusal of opening a store of mode `stored` as mode `requested`. */
export function identityModeMismatch(where: string, stored: IdentityMode, requested: IdentityMode): StoreError {
  return new StoreError(
    'ERR_IDENTITY_MODE_MISMATCH',
    `${where} is an identity-mode ${stored} store: ${MEANING[stored]}. It cannot be opened in mode ${requested}, where ${MEANING[requested]}: ` +
      `its addresses were promised under the other rule. Pass --identity-mode ${stored}, or start a fresh store in mode ${requested} with another --db (nothing was written)`,
  );
}
