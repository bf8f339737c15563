/** Error from a client (§9): logged, and the connection ends. */
import type { PacketOf, PacketType } from '../../../protocol/index.ts';
import { boundedText } from '../limits.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Handles Error from a client (§9): logged, and the connection ends. */
export function onError(ctx: RelayContext, conn: Connection, packet: PacketOf<typeof PacketType.Error>): void {
  // The text is the client's: bounded before it reaches a log line (issue 9, finding 6).
  const message = boundedText(packet.message, ctx.options.maxLogFieldChars);
  if (message.truncated) ctx.counters.logFieldsTruncated++;
  ctx.log.info({ clientId: conn.id, code: packet.code, message: message.text }, 'client sent Error');
  conn.reader.stop();
  conn.endTransport();
}
