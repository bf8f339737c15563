/** Hello (§2.1): the connection's machine decides (version check, then the address store). */
import { IDENTITY_PROTOCOL_VERSION, type PacketOf, type PacketType } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Hello (§2.1): the connection's machine decides (version check, then the address store). */
export function onHello(_ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.Hello>): void {
  // Version 2 says the client will prove an identity key (§2a).
  conn.actor.send({ type: 'hello.received', version: packet.version, proves: packet.version === IDENTITY_PROTOCOL_VERSION });
}
