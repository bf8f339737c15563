/** IdentityProof (§2a): checks the signature over the challenge; the machine moves on or refuses. */
import type { PacketOf, PacketType } from '../../../protocol/index.ts';
import { checkIdentityProof } from '../../../protocol/identity-proof.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/**
 * Handles IdentityProof (§2a): only while the connection is proving, once. A verified proof
 * leaves the key on the connection (the store entry in key mode, PeerKey to its peers).
 */
export function onIdentityProof(_ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.IdentityProof>): void {
  const challenge = conn.challenge;
  if (conn.phase !== 'proving' || challenge === undefined) return conn.unexpected(packet.type);
  conn.challenge = undefined;
  const refusal = checkIdentityProof(packet.publicKey, packet.signature, challenge);
  if (refusal !== undefined) {
    conn.actor.send({ type: 'identity.refused', message: `identity proof refused: ${refusal}` });
    return;
  }
  conn.publicKey = packet.publicKey;
  conn.actor.send({ type: 'identity.proven' });
}
