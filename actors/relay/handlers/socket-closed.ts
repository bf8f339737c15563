/** SocketClosed (§8): handed to the pair's machine, which tells the other end and releases the pair. */
import { CLOSE_REASON_NAMES, type PacketOf, type PacketType } from '../../../protocol/index.ts';
import type { PairCloseReason } from '../../../machines/socket-pair.machine.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

function closeReasonName(reason: number): PairCloseReason {
  const name = CLOSE_REASON_NAMES[reason];
  return (name ?? 'Error') as PairCloseReason;
}

/** Handles SocketClosed (§8): handed to the pair's machine, which tells the other end and releases the pair. */
export function onSocketClosed(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.SocketClosed>): void {
  const pair = ctx.pairs.get(packet.connectionId);
  // §8: unknown ids are ignored (a close may cross another).
  if (pair === undefined || !pair.open || (pair.a !== conn && pair.b !== conn)) return;
  ctx.control.send({
    to: { kind: 'pair', id: pair.id },
    event: { type: 'close.received', end: pair.a === conn ? 'a' : 'b', reason: closeReasonName(packet.reason) },
  });
}
