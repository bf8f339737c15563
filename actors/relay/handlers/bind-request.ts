/** BindRequest (§5): the host table answers with a BindStatus. */
import { BindStatus, PacketType, type PacketOf } from '../../../protocol/index.ts';
import { countRefusal } from '../counters.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles BindRequest (§5): the host table answers with a BindStatus. */
export function onBindRequest(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.BindRequest>): void {
  const result = ctx.hosts.bind(conn, packet.port);
  if (result.limit !== undefined) countRefusal(ctx.counters, result.limit);
  conn.out.packet({ type: PacketType.BindResponse, requestId: packet.requestId, status: result.status, port: result.port });
  if (result.status === BindStatus.Ok) ctx.bus.emit('port.bound', { clientId: conn.id, virtualIp: conn.host!.ipText, port: result.port });
}
