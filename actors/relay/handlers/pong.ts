/** Pong (§4): nothing to do; lastSeen already moved (any frame is a sign of life). */
import type { PacketOf, PacketType } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Pong (§4): nothing to do; lastSeen already moved (any frame is a sign of life). */
export function onPong(_ctx: RelayContext, _conn: Connection, _packet: PacketOf<typeof PacketType.Pong>): void {}
