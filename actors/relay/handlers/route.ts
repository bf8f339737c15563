/**
 * The checks both forwarded requests share (§6): the source port is the sender's, it has room
 * for one more waiting request, and the destination is a bound port of another connection.
 */
import { ConnectionStatus, FailureReason, PacketType, SocketStatus, formatAddress, type Packet, type WireAddress } from '../../../protocol/index.ts';
import type { RemoteRequest } from '../cluster/remote-router.ts';
import type { HandshakeCompletedEvent } from '../relay-events.ts';
import { countRefusal } from '../counters.ts';
import { reportHandshake, requestFailed } from '../replies.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';

/** Where a request goes: the stamped source and the connection that holds the destination port. */
export interface Route {
  source: WireAddress;
  target: Connection;
}

/** The route of a request, or undefined after answering the origin itself. */
export function route(
  ctx: RelayContext,
  conn: Connection,
  kind: 'status' | 'connect',
  requestId: number,
  source: WireAddress,
  destination: WireAddress,
): Route | undefined {
  const host = conn.host!;
  ctx.counters.requestsTotal++;
  const started = ctx.clock.now();
  const src = { ip: host.ip, port: source.port };
  const report = (outcome: HandshakeCompletedEvent['outcome']) =>
    reportHandshake(ctx, {
      kind,
      clientId: conn.id,
      source: formatAddress(src),
      destination: formatAddress(destination),
      outcome,
      durationMs: ctx.clock.now() - started,
    });
  const fail = (reason: number, outcome: HandshakeCompletedEvent['outcome']) => {
    requestFailed(ctx, conn.id, requestId, reason, kind);
    report(outcome);
    return undefined;
  };
  // §6: the source is stamped from the sender's connection; its port must be held by it.
  if (!conn.ports.has(source.port)) return fail(FailureReason.InvalidRequest, 'invalid');
  const refusal = ctx.pending.admit(conn);
  if (refusal !== undefined) {
    if (refusal === 'maxPendingRequests') countRefusal(ctx.counters, refusal);
    return fail(FailureReason.LimitReached, 'limit');
  }
  const targetHost = ctx.hosts.get(destination.ip);
  // A port held on another relay of the cluster (docs/CLUSTER.md): the router prepares the route, then retries.
  if (ctx.options.remote !== undefined && targetHost?.ports.has(destination.port) !== true) {
    if (ctx.options.remote.route(remoteRequest(ctx, conn, kind, requestId, source, src, destination))) return undefined;
  }
  if (targetHost === undefined) return fail(FailureReason.Offline, 'offline');
  const target = targetHost.ports.get(destination.port);
  if (target === undefined) {
    if (kind === 'status') {
      conn.out.packet({ type: PacketType.SocketStatusResponse, requestId, status: SocketStatus.NotBound });
      report('not-bound');
    } else {
      conn.out.packet({ type: PacketType.SocketConnectionResponse, requestId, connectionId: 0, status: ConnectionStatus.NotListening });
      report('not-listening');
    }
    return undefined;
  }
  // Both ends on one TCP connection would share a connectionId with no way to tell the
  // directions apart; two connections of one host are fine.
  if (target === conn) return fail(FailureReason.InvalidRequest, 'invalid');
  return { source: src, target };
}

/** A request handed to the cluster's router, with the way back into this relay. */
function remoteRequest(
  ctx: RelayContext,
  conn: Connection,
  kind: 'status' | 'connect',
  requestId: number,
  source: WireAddress,
  stamped: WireAddress,
  destination: WireAddress,
): RemoteRequest {
  const packet: Packet =
    kind === 'status'
      ? { type: PacketType.SocketStatusRequest, requestId, source, destination }
      : { type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source, destination };
  return {
    kind,
    clientId: conn.id,
    source: stamped,
    destination,
    retry: () => {
      if (ctx.conns.get(conn.id) !== conn || conn.closed) return;
      // As if the packet had just arrived: what it causes counts against the requester (§7).
      const before = ctx.scope.source;
      ctx.scope.source = conn;
      ctx.now = ctx.clock.now();
      try {
        ctx.dispatch(conn, packet);
      } finally {
        ctx.scope.source = before;
      }
    },
    fail: (reason) => {
      if (ctx.conns.get(conn.id) === conn && !conn.closed) requestFailed(ctx, conn.id, requestId, reason, kind);
    },
  };
}
