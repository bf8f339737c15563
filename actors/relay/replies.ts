/** Answers the relay sends on more than one path: a packet to a connection by id, RequestFailed, a handshake report. */
import { FAILURE_REASON_NAMES, PacketType, type Packet } from '../../protocol/index.ts';
import type { HandshakeCompletedEvent } from './relay-events.ts';
import type { RelayContext } from './context.ts';

/**
 * Writes `packet` to connection `id` through the control channel (dropped if it is gone). It
 * counts against the backpressure of the client whose bytes are being handled (§7).
 */
export function sendPacket(ctx: RelayContext, id: number, packet: Packet): void {
  ctx.control.send({ to: { kind: 'connection', id }, event: { type: 'packet.send', packet } });
}

/** Answers the origin's request RequestFailed (§6) and reports it. */
export function requestFailed(ctx: RelayContext, clientId: number, requestId: number, reason: number, kind: 'status' | 'connect'): void {
  ctx.counters.requestsFailed++;
  sendPacket(ctx, clientId, { type: PacketType.RequestFailed, requestId, reason });
  ctx.bus.emit('request.failed', { clientId, reason: FAILURE_REASON_NAMES[reason] ?? String(reason), kind });
}

/** Reports how a status or connection request ended. */
export function reportHandshake(ctx: RelayContext, event: HandshakeCompletedEvent): void {
  ctx.bus.emit('handshake.completed', event);
}
