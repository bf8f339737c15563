/** Unbind (§5): frees the port if this connection holds it; no answer either way. */
import type { PacketOf, PacketType } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Unbind (§5): frees the port if this connection holds it; no answer either way. */
export function onUnbind(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.Unbind>): void {
  if (!ctx.hosts.unbind(conn, packet.port)) return;
  ctx.bus.emit('port.released', { clientId: conn.id, virtualIp: conn.host!.ipText, port: packet.port });
}
