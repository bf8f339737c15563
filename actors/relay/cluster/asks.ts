/**
 * The requests between the relays of a cluster and their answers (docs/CLUSTER.md "Across
 * relays", "Identity across relays"): JSON on `alphanet.relay.<relay id>.request`, one NATS
 * request and reply each. Keys cross as unpadded base64url; a key from another relay is taken on
 * its word (the NATS account is trusted, docs/SECURITY.md "Across the relays of a cluster") but
 * must be 32 bytes of base64url.
 */
import { formatPublicKey } from '../../../protocol/identity-proof.ts';
import type { WireAddress } from '../../../protocol/index.ts';

/** A key as it crosses NATS: unpadded base64url, or null for a client that proved none. */
export type KeyText = string | null;

export interface RemoteAsk {
  op: 'status' | 'connect';
  /** The asking relay. */
  from: string;
  /** The requester's real IP, so the holder's stand-in for it gets the same virtual IP (ip mode). */
  realIp: string;
  /** The key the requester proved to the asking relay: its stand-in there speaks with it (key mode: its address). */
  key: KeyText;
  source: WireAddress;
  destination: WireAddress;
  link?: string;
}

/** Who holds `destination` on the asked relay, before a stand-in is made for it. */
export interface IdentityAsk {
  op: 'identity';
  from: string;
  destination: WireAddress;
}

/** An answer; an accepted connect's `key` is the one the holder's relay announced for the accepting end. */
export type RemoteAnswer = { status: number; key?: KeyText } | { failed: number };

export type IdentityAnswer = { realIp: string; key: KeyText } | { failed: number };

const PUBLIC_KEY_TEXT = /^[A-Za-z0-9_-]{43}$/;

/** A key as a message carries it. */
export function keyText(key: Uint8Array | undefined): KeyText {
  return key === undefined ? null : formatPublicKey(key);
}

/** A key from another relay's message; 'bad' for anything but null or 32 bytes of base64url. */
export function parseKey(text: unknown): Uint8Array | undefined | 'bad' {
  if (text === null || text === undefined) return undefined;
  if (typeof text !== 'string' || !PUBLIC_KEY_TEXT.test(text)) return 'bad';
  return new Uint8Array(Buffer.from(text, 'base64url'));
}
