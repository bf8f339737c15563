/** Hello (§2.1): the connection's machine decides (version check, then the address store). */
import { IDENTITY_PROTOCOL_VERSION, type PacketOf, type PacketType } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Hello (§2.1): the connection's machine decides (version check, then the address store). */
export function onHello(_ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.Hello>): void {
  // Version 2 says the client will prove an identity key (§2a). A connection that has a key before
  // its Hello is a cluster's stand-in whose key its own relay verified (Relay.admitStream): no
  // challenge. A network connection has none here: only a verified IdentityProof sets it.
  const vouched = conn.publicKey !== undefined;
  conn.actor.send({ type: 'hello.received', version: packet.version, proves: packet.version === IDENTITY_PROTOCOL_VERSION && !vouched });
}
