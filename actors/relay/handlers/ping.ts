/** Ping (§4): answered with Pong carrying the same nonce. */
import { PacketType, type PacketOf } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Ping (§4): answered with Pong carrying the same nonce. */
export function onPing(_ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.Ping>): void {
  conn.out.packet({ type: PacketType.Pong, nonce: packet.nonce });
}
