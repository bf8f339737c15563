/** SocketConnectionRequest (§6.2): routed and admitted, a pair and its machine are made, and the target is asked. */
import { FailureReason, PacketType, formatAddress, type PacketOf } from '../../../protocol/index.ts';
import { countRefusal } from '../counters.ts';
import { requestFailed, sendPacket } from '../replies.ts';
import { Pair } from '../pairs.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';
import { route } from './route.ts';
import { announcePeerKey } from '../identity.ts';

/** Handles SocketConnectionRequest (§6.2): routed and admitted, a pair and its machine are made, and the target is asked. */
export function onSocketConnectionRequest(
  ctx: RelayContext,
  conn: Connection,
  packet: PacketOf<typeof PacketType.SocketConnectionRequest>,
): void {
  const found = route(ctx, conn, 'connect', packet.requestId, packet.source, packet.destination);
  if (found === undefined) return;
  const target = found.target;
  const refusal = ctx.pairs.admit(conn, target);
  if (refusal !== undefined) {
    if (refusal !== 'maxSocketsPerClient') countRefusal(ctx.counters, refusal);
    requestFailed(ctx, conn.id, packet.requestId, FailureReason.LimitReached, 'connect');
    return;
  }
  const id = ctx.pairs.newId();
  const relayId = ctx.pending.newId();
  const aAddress = formatAddress(found.source);
  const bAddress = formatAddress(packet.destination);
  const pair = new Pair(id, conn, target, aAddress, bAddress, packet.requestId, relayId, ctx.clock.now());
  ctx.pairs.add(pair);
  ctx.pending.add(relayId, { kind: 'connect', pair }, conn);
  ctx.machines.startPair(pair);
  announcePeerKey(ctx, target, conn, id);
  sendPacket(ctx, target.id, {
    type: PacketType.SocketConnectionRequest,
    requestId: relayId,
    connectionId: id,
    source: found.source,
    destination: packet.destination,
  });
}
