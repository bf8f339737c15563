/** DatagramBind (§10): the datagram port table answers with a BindResponse. */
import { PacketType, type PacketOf } from '../../../protocol/index.ts';
import { countRefusal } from '../counters.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles DatagramBind (§10): answered with BindResponse, the same statuses as BindRequest (§5). */
export function onDatagramBind(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.DatagramBind>): void {
  const result = ctx.datagrams.bind(conn, packet.port, ctx.now);
  if (result.limit !== undefined) countRefusal(ctx.counters, result.limit);
  conn.out.packet({ type: PacketType.BindResponse, requestId: packet.requestId, status: result.status, port: result.port });
}
