/** SocketStatusRequest (§6.1): routed, then forwarded to the target under a relay request id; a machine waits for the answer. */
import { PacketType, formatAddress, type PacketOf } from '../../../protocol/index.ts';
import { sendPacket } from '../replies.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';
import { route } from './route.ts';

/** Handles SocketStatusRequest (§6.1): routed, then forwarded to the target under a relay request id; a machine waits for the answer. */
export function onSocketStatusRequest(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.SocketStatusRequest>): void {
  const found = route(ctx, conn, 'status', packet.requestId, packet.source, packet.destination);
  if (found === undefined) return;
  const relayId = ctx.pending.newId();
  const entry = ctx.machines.startStatusRequest({
    kind: 'status',
    relayId,
    origin: conn,
    originRequestId: packet.requestId,
    target: found.target,
    source: formatAddress(found.source),
    destination: formatAddress(packet.destination),
    startedAt: ctx.clock.now(),
  });
  ctx.pending.add(relayId, entry, conn);
  sendPacket(ctx, found.target.id, {
    type: PacketType.SocketStatusRequest,
    requestId: relayId,
    source: found.source,
    destination: packet.destination,
  });
}
