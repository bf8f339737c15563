/** Hello (§2.1): the connection's machine decides (version check, then the address store). */
import type { PacketOf, PacketType } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Hello (§2.1): the connection's machine decides (version check, then the address store). */
export function onHello(_ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.Hello>): void {
  conn.actor.send({ type: 'hello.received', version: packet.version });
}
