/** SocketConnectionResponse (§6.3): the target's decision goes to the pair's machine. */
import { CloseReason, ConnectionStatus, PacketType, type PacketOf } from '../../../protocol/index.ts';
import { reportHandshake } from '../replies.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles SocketConnectionResponse (§6.3): the target's decision goes to the pair's machine. */
export function onSocketConnectionResponse(
  ctx: RelayContext,
  conn: Connection,
  packet: PacketOf<typeof PacketType.SocketConnectionResponse>,
): void {
  const entry = ctx.pending.get(packet.requestId);
  if (entry === undefined || entry.kind !== 'connect' || entry.pair.b !== conn || entry.pair.id !== packet.connectionId) {
    // Late (after a timeout or the origin left): an accepting target must drop what it opened.
    const known = ctx.pairs.get(packet.connectionId);
    if (packet.status === ConnectionStatus.Accepted && packet.connectionId !== 0 && (known === undefined || known.b !== conn)) {
      conn.out.packet({ type: PacketType.SocketClosed, connectionId: packet.connectionId, reason: CloseReason.Error });
    }
    return;
  }
  const pair = entry.pair;
  ctx.pending.settleConnect(pair);
  const accepted = packet.status === ConnectionStatus.Accepted;
  pair.responseStatus = accepted || packet.status === ConnectionStatus.NotListening ? packet.status : ConnectionStatus.Denied;
  reportHandshake(ctx, {
    kind: 'connect',
    clientId: pair.a.id,
    source: pair.aAddress,
    destination: pair.bAddress,
    outcome: accepted ? 'accepted' : pair.responseStatus === ConnectionStatus.NotListening ? 'not-listening' : 'denied',
    durationMs: ctx.clock.now() - pair.requestedAt,
  });
  ctx.control.send({ to: { kind: 'pair', id: pair.id }, event: { type: accepted ? 'response.accepted' : 'response.refused' } });
}
