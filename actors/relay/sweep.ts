/**
 * The relay-wide sweep (§4, §7, §8, docs/RELAY.md "Bounds"): one timer instead of timers per
 * client, so 10,000 idle clients cost one tick. It pings and times out silent clients, drops
 * slow consumers and frames that never complete, reads budget waiters again and closes idle pairs.
 */
import { PacketType } from '../../protocol/index.ts';
import type { RelayContext } from './context.ts';

/** Bounds of the sweep period. */
const MIN_SWEEP_MS = 10;
const MAX_SWEEP_MS = 1_000;
const UINT32 = 0x1_0000_0000;

/** The sweep period for these options: fine enough for the shortest timeout it serves. */
export function sweepPeriodMs(ctx: RelayContext): number {
  const o = ctx.options;
  return Math.max(
    MIN_SWEEP_MS,
    Math.min(MAX_SWEEP_MS, o.keepaliveIntervalMs / 2, o.keepaliveTimeoutMs / 4, o.idleTimeoutMs > 0 ? o.idleTimeoutMs / 4 : Infinity),
  );
}

/**
 * Runs the sweep every `periodMs` on the relay's clock until the returned stop is called. A
 * re-armed timeout rather than an interval, so xstate's SimulatedClock (which has no interval)
 * can drive it; a real timer is unref'd so the sweep alone keeps no process alive.
 */
export function startSweep(ctx: RelayContext, periodMs: number): () => void {
  let timer: unknown;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    arm();
    sweep(ctx);
  };
  const arm = () => {
    timer = ctx.clock.setTimeout(tick, periodMs);
    (timer as { unref?: () => void }).unref?.();
  };
  arm();
  return () => {
    stopped = true;
    ctx.clock.clearTimeout(timer);
  };
}

/** One pass over every connection and, with an idle timeout, every pair. */
export function sweep(ctx: RelayContext): void {
  const now = ctx.clock.now();
  ctx.now = now;
  const o = ctx.options;
  const toConnection = (id: number, event: { type: 'keepalive.timeout' } | { type: 'protocol.error'; error: 'SlowConsumer' | 'FrameTimeout'; message: string }) =>
    ctx.control.send({ to: { kind: 'connection', id }, event });
  for (const conn of ctx.conns.values()) {
    const out = conn.out;
    if (conn.phase !== 'closed') out.countQueue();
    if (conn.phase !== 'ready') continue;
    // 'drain' comes only after a write the socket refused; a queue that emptied below the
    // socket's own mark never sends one, so an empty queue releases its sources here.
    if (out.blockedSources !== undefined && conn.socket.writableLength === 0) out.drained();
    if (out.blockedSources !== undefined) {
      // Progress is what the receiver took off its socket (bytes written less bytes still
      // queued), not whether one big write has finished: a receiver that reads slowly but
      // steadily keeps its place; one that takes nothing for the timeout while others wait
      // for it is dropped so they can go on (§7, issue 9, finding 5). Counted in the queue's
      // own unit: a keepalive Ping queued for a stalled WebSocket is no progress.
      const taken = out.taken();
      if (taken !== out.progressMark) {
        out.progressMark = taken;
        out.progressAt = now;
      } else if (now - out.progressAt >= o.slowConsumerTimeoutMs) {
        ctx.counters.slowConsumers++;
        const queuedBytes = conn.socket.writableLength;
        ctx.log.warn({ clientId: conn.id, realIp: conn.realIp, queuedBytes }, 'slow consumer, disconnecting');
        toConnection(conn.id, {
          type: 'protocol.error',
          error: 'SlowConsumer',
          message: `took none of ${queuedBytes} queued bytes for ${now - out.progressAt} ms while others waited`,
        });
        continue;
      }
    }
    // A frame that does not complete in time is an attack or a dead link (docs/RELAY.md
    // "Bounds"); time the relay was not reading the connection for a destination's sake
    // does not count.
    if (conn.frameSince > 0 && !conn.flowBlocked() && now - conn.frameSince >= o.frameTimeoutMs) {
      ctx.counters.frameTimeouts++;
      const buffered = conn.bufferedBytes;
      ctx.log.warn({ clientId: conn.id, realIp: conn.realIp, bufferedBytes: buffered }, 'frame timeout, disconnecting');
      toConnection(conn.id, {
        type: 'protocol.error',
        error: 'FrameTimeout',
        message: `a frame did not complete within ${o.frameTimeoutMs} ms (${buffered} bytes of it arrived)`,
      });
      continue;
    }
    // A client we stopped reading cannot show signs of life; it is not silent (§4).
    const silentMs = conn.flowBlocked() || conn.budgetWait ? 0 : now - conn.lastSeen;
    if (silentMs >= o.keepaliveTimeoutMs) {
      ctx.counters.keepaliveTimeouts++;
      ctx.log.warn({ clientId: conn.id, realIp: conn.realIp, silentMs }, 'keepalive timeout');
      ctx.bus.emit('client.keepaliveTimeout', { clientId: conn.id, realIp: conn.realIp, virtualIp: conn.host?.ipText, silentMs });
      toConnection(conn.id, { type: 'keepalive.timeout' });
    } else if (now - conn.lastPingAt >= o.keepaliveIntervalMs) {
      conn.lastPingAt = now;
      conn.nextNonce = (conn.nextNonce + 1) % UINT32;
      out.packet({ type: PacketType.Ping, nonce: conn.nextNonce });
    }
  }
  // Connections held back by the incomplete-frame budget read again once others' bytes fit.
  // The frame timer keeps running meanwhile: a budget filled by trickled frames empties as
  // they time out, instead of holding everyone's frames still.
  for (const conn of [...ctx.reading.waiters]) {
    if (conn.phase === 'closed' || ctx.reading.over(conn, conn.partialBytes)) continue;
    ctx.reading.waiters.delete(conn);
    conn.budgetWait = false;
    conn.resumeReading(false);
  }
  if (o.idleTimeoutMs > 0) {
    for (const pair of ctx.pairs.values()) {
      if (pair.open && now - pair.lastActivity >= o.idleTimeoutMs) ctx.control.send({ to: { kind: 'pair', id: pair.id }, event: { type: 'idle.timeout' } });
    }
  }
}
