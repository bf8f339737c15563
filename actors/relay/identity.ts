/**
 * The relay's two identity modes (docs/PROTOCOL.md §2a, docs/STORAGE.md "Identity mode"): what
 * a connection's store entry is keyed by, and the PeerKey it is announced with.
 */
import { PacketType } from '../../protocol/index.ts';
import { formatPublicKey } from '../../protocol/identity-proof.ts';
import type { Connection } from './connection.ts';
import type { RelayContext } from './context.ts';
import { sendPacket } from './replies.ts';
import { KEY_ENTRY_PREFIX } from '../../storage/identity-mode.ts';

/**
 * `ip`: the permanent virtual IP follows the real IP (the seed's rule); a proven key is only
 * announced to peers. `key`: it follows the client's proven Ed25519 key, wherever it connects from.
 * The store keeps the same type: its entries are keyed by one rule for good.
 */
export { DEFAULT_IDENTITY_MODE, IDENTITY_MODES, KEY_ENTRY_PREFIX, type IdentityMode } from '../../storage/identity-mode.ts';

/** Largest frame accepted while proving (§2a): the 101-byte IdentityProof, nothing larger. */
export const PROVING_MAX_FRAME_BYTES = 128;


/** The store entry of a key (`key:<base64url>`). */
export function keyEntry(publicKey: Uint8Array): string {
  return `${KEY_ENTRY_PREFIX}${formatPublicKey(publicKey)}`;
}

/** What `conn`'s virtual IP is stored under: its real IP, or in key mode its proven key. */
export function storeKeyOf(ctx: RelayContext, conn: Connection): string {
  if (ctx.options.identityMode === 'key' && conn.publicKey !== undefined) return keyEntry(conn.publicKey);
  return conn.realIp;
}

/**
 * Tells `to` the proven key of the other end of connection `connectionId` (§2a, §6): written just
 * before the SocketConnectionRequest or accepted SocketConnectionResponse it belongs to, on the
 * same ordered path. Only a client that proved a key speaks version 2 and hears it, and only
 * when the other end proved one: a version-1 client never sees this packet.
 */
export function announcePeerKey(ctx: RelayContext, to: Connection, peer: Connection, connectionId: number): void {
  if (to.publicKey === undefined || peer.publicKey === undefined) return;
  sendPacket(ctx, to.id, { type: PacketType.PeerKey, connectionId, publicKey: peer.publicKey });
}
