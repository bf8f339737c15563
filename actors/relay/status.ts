/** status(): counts, limits, recent closes and one page of clients and pairs. */
import type { RelayContext } from './context.ts';
import {
  DEFAULT_STATUS_LIST_LIMIT,
  STATUS_PORTS_LIMIT,
  type ClientStatus,
  type PairStatus,
  type RelayStatus,
  type StatusQuery,
} from './relay-types.ts';
import { stateName } from './machines.ts';

/** Where the relay listens and since when, for the snapshot's header. */
export interface StatusHeader {
  host: string;
  port: number;
  startedAt: number;
}

/** A JSON-able snapshot; only the asked page of each list is built (a status costs time in proportion to what it lists). */
export function buildStatus(ctx: RelayContext, header: StatusHeader, query: StatusQuery = {}): RelayStatus {
  const now = ctx.clock.now();
  const limit = Math.max(0, query.limit ?? DEFAULT_STATUS_LIST_LIMIT);
  const offset = Math.max(0, Math.floor(query.offset ?? 0));
  // Only the page is built: entries before it are skipped, and iteration stops after it.
  const clients: ClientStatus[] = [];
  let index = 0;
  let moreClients = false;
  for (const conn of ctx.conns.values()) {
    if (index++ < offset) continue;
    if (clients.length >= limit) {
      moreClients = true;
      break;
    }
    const ports: number[] = [];
    for (const port of conn.ports) {
      if (ports.length >= STATUS_PORTS_LIMIT) break;
      ports.push(port);
    }
    clients.push({
      id: conn.id,
      virtualIp: conn.host?.ipText ?? null,
      realIp: conn.realIp,
      connectedAt: conn.connectedAt,
      state: stateName(conn.actor.getSnapshot().value),
      bytesIn: conn.bytesIn,
      bytesOut: conn.out.bytesOut,
      sockets: conn.pairs.size,
      ports,
      portCount: conn.ports.size,
      paused: conn.blockedBy !== undefined && conn.blockedBy.size > 0,
      queuedBytes: conn.socket.writableLength,
    });
  }
  const pairs: PairStatus[] = [];
  index = 0;
  for (const pair of ctx.pairs.values()) {
    if (index++ < offset) continue;
    if (pairs.length >= limit) break;
    pairs.push({
      id: pair.id,
      a: pair.aAddress,
      b: pair.bAddress,
      state: pair.state,
      openedAt: pair.openedAt,
      bytesAToB: pair.bytesAToB,
      bytesBToA: pair.bytesBToA,
    });
  }
  // A pair is opening exactly while its connection request is pending, so the open ones are
  // counted from the pending requests (bounded per client), not by walking every pair.
  let pairsOpening = 0;
  for (const entry of ctx.pending.values()) if (entry.kind === 'connect' && !entry.pair.opened) pairsOpening++;
  const { store: _store, logger: _logger, inspect: _inspect, clock: _clock, host: _host, port: _port, ...limits } = ctx.options;
  return {
    host: header.host,
    port: header.port,
    startedAt: header.startedAt,
    uptimeMs: now - header.startedAt,
    clients,
    pairs,
    list: {
      limit: Number.isFinite(limit) ? limit : null,
      offset,
      truncated: { clients: moreClients, pairs: offset + pairs.length < ctx.pairs.size },
    },
    recentCloses: ctx.recent.list(),
    totals: {
      ...ctx.counters,
      clientsConnected: ctx.conns.size,
      hosts: ctx.hosts.size,
      pairsActive: ctx.pairs.size - pairsOpening,
      pairsLive: ctx.pairs.size,
      pendingRequests: ctx.pending.size,
      storeEntries: ctx.options.store.size,
    },
    limits,
  };
}
