/** SocketStatusResponse (§6.1): the answer goes to the waiting request's machine. */
import { SocketStatus, type PacketOf, type PacketType } from '../../../protocol/index.ts';
import type { StatusAnswer } from '../../../machines/status-request.machine.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

function answerName(status: number): StatusAnswer {
  return status === SocketStatus.Listening ? 'listening' : status === SocketStatus.NotBound ? 'not-bound' : 'not-listening';
}

/** Handles SocketStatusResponse (§6.1): the answer goes to the waiting request's machine. */
export function onSocketStatusResponse(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.SocketStatusResponse>): void {
  const entry = ctx.pending.get(packet.requestId);
  // A late or foreign answer is dropped: only the asked connection may answer.
  if (entry === undefined || entry.kind !== 'status' || entry.target !== conn) return;
  ctx.control.send({
    to: { kind: 'statusRequest', id: entry.relayId },
    event: { type: 'response.received', status: packet.status, answer: answerName(packet.status) },
  });
}
