/** SocketEnd (§7): handed to the pair's machine, which forwards it to the other end. */
import { CloseReason, PacketType, type PacketOf } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles SocketEnd (§7): handed to the pair's machine, which forwards it to the other end. */
export function onSocketEnd(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.SocketEnd>): void {
  const connectionId = packet.connectionId;
  const pair = ctx.pairs.get(connectionId);
  if (pair === undefined || !pair.open || (pair.a !== conn && pair.b !== conn)) {
    conn.out.packet({ type: PacketType.SocketClosed, connectionId, reason: CloseReason.ProtocolViolation });
    return;
  }
  ctx.control.send({ to: { kind: 'pair', id: connectionId }, event: { type: 'end.received', end: pair.a === conn ? 'a' : 'b' } });
}
