/** DatagramUnbind (§10): frees the datagram port if this connection holds it; no answer either way. */
import type { PacketOf, PacketType } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles DatagramUnbind (§10): frees the datagram port if this connection holds it; no answer either way. */
export function onDatagramUnbind(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.DatagramUnbind>): void {
  ctx.datagrams.unbind(conn, packet.port);
}
