/**
 * What happens when a connection or a pair ends (called by their machines' `release` action):
 * everything it held is freed, the other side hears through the control channel, and the end
 * is logged, remembered for status() and kept for the machine's emitted close event.
 */
import type { Connection } from './connection.ts';
import type { Pair } from './pairs.ts';
import type { RelayContext } from './context.ts';
import { storeKeyOf } from './identity.ts';

/** Everything a connection held goes; each peer hears PeerDisconnected (§8). */
export function releaseConnection(ctx: RelayContext, conn: Connection, reason: string, message: string): void {
  // Last-seen is recorded at Hello and again when a client leaves, so a client connected for
  // months is not "unseen" to `alphanet store reclaim` (at most one record per entry per day).
  if (conn.host !== undefined) ctx.options.store.touch?.(storeKeyOf(ctx, conn));
  conn.reader.stop();
  // Nothing more is read: what its transport still holds (a WebSocket message under way) goes with it.
  ctx.reading.count(conn, 0);
  ctx.reading.waiters.delete(conn);
  ctx.counters.queuedBytes -= conn.out.queuedSeen;
  conn.out.queuedSeen = 0;
  ctx.conns.delete(conn.id);
  for (const pair of [...conn.pairs]) {
    ctx.control.send({ to: { kind: 'pair', id: pair.id }, event: { type: 'end.left', end: pair.a === conn ? 'a' : 'b' } });
  }
  for (const entry of [...conn.pendingIn]) ctx.control.send({ to: { kind: 'statusRequest', id: entry.relayId }, event: { type: 'target.left' } });
  const host = conn.host;
  ctx.datagrams.leave(conn);
  ctx.hosts.leave(conn);
  // A dead destination will never drain: let its sources read again.
  if (conn.out.blockedSources !== undefined) conn.out.drained();
  if (conn.blockedBy !== undefined) {
    for (const dst of conn.blockedBy) dst.blockedSources?.delete(conn);
    conn.blockedBy = undefined;
  }
  if (!conn.socket.destroyed && reason === 'TransportClosed') conn.socket.destroy();
  const at = ctx.clock.now();
  const durationMs = at - conn.connectedAt;
  const virtualIp = host?.ipText;
  const level = reason === 'TransportClosed' || reason === 'RelayShuttingDown' ? 'info' : 'warn';
  ctx.log[level]({ clientId: conn.id, realIp: conn.realIp, virtualIp, reason, durationMs }, 'client disconnected');
  const bytesOut = conn.out.bytesOut;
  ctx.recent.remember({ kind: 'client', id: conn.id, label: `${conn.realIp} → ${virtualIp ?? '-'}`, reason, at, durationMs, bytes: [conn.bytesIn, bytesOut] });
  conn.closedEvent = { id: conn.id, realIp: conn.realIp, virtualIp, reason, message, durationMs, bytesIn: conn.bytesIn, bytesOut };
}

/** The pair leaves every table; how it ended is logged, remembered and kept for pair.closed. */
export function releasePair(ctx: RelayContext, pair: Pair, reason: string): void {
  if (ctx.pairs.get(pair.id) !== pair) return;
  ctx.pending.settleConnect(pair);
  ctx.pairs.delete(pair);
  ctx.windowBudget.forget(pair.id, pair.creditAToB, pair.creditBToA);
  const at = ctx.clock.now();
  const durationMs = at - (pair.opened ? pair.openedAt : pair.requestedAt);
  if (reason === 'IdleTimeout') ctx.counters.idleTimeouts++;
  ctx.log.debug({ connectionId: pair.id, a: pair.aAddress, b: pair.bAddress, reason }, 'socket connection closed');
  const label = `${pair.aAddress} ↔ ${pair.bAddress}`;
  ctx.recent.remember({ kind: 'pair', id: pair.id, label, reason, at, durationMs, bytes: [pair.bytesAToB, pair.bytesBToA] });
  pair.closedEvent = {
    id: pair.id,
    a: pair.aAddress,
    b: pair.bAddress,
    reason,
    bytesAToB: pair.bytesAToB,
    bytesBToA: pair.bytesBToA,
    durationMs,
    opened: pair.opened,
  };
}
