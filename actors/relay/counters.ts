/** The relay's plain counters: incremented where things happen, read live by metrics and status(). */

/** Plain counters, incremented on the data path (never events). */
export interface RelayCounters {
  framesIn: number;
  bytesIn: number;
  framesRelayed: number;
  bytesRelayed: number;
  clientsTotal: number;
  clientsRejected: number;
  pairsTotal: number;
  requestsTotal: number;
  requestsFailed: number;
  protocolErrors: number;
  keepaliveTimeouts: number;
  idleTimeouts: number;
  backpressurePauses: number;
  /** Clients dropped for holding others back while reading nothing (§7). */
  slowConsumers: number;
  /** Connections closed for not completing a frame within the frame timeout. */
  frameTimeouts: number;
  /** Times a connection was not read because incomplete-frame bytes were over budget. */
  partialFramePauses: number;
  /** Requests, binds and connections refused by a bound, by the bound's option name. */
  limitRefusals: Record<string, number>;
  /** Client-supplied log fields cut at maxLogFieldChars. */
  logFieldsTruncated: number;
  /** Now: bytes of incomplete or held frames relay-wide. */
  partialFrameBytes: number;
  /** Now: bytes queued for all destinations (as last seen; drains are counted when seen). */
  queuedBytes: number;
  /** Now: socket connections (requested or open). */
  pairCount: number;
  /** Now: requests waiting on targets. */
  pendingCount: number;
  /** Now: bound ports. */
  boundPortCount: number;
  /** Datagrams forwarded (docs/PROTOCOL.md §10), and their frame bytes. */
  datagramsRelayed: number;
  datagramBytesRelayed: number;
  /** Datagrams dropped, by reason (DatagramDropReason): never queued, never answered. */
  datagramsDropped: Record<DatagramDropReason, number>;
  /** Now: bound datagram ports. */
  datagramPortCount: number;
}

/**
 * Why the relay dropped a datagram (§10): the destination's queue was at the datagram threshold
 * or the relay's queues at their bound (`congested`); no connection of the destination host holds
 * the port (`notBound`); the sender's host is over its rate (`rateLimited`); the sender does not
 * hold the source port it wrote (`unboundSource`).
 */
export type DatagramDropReason = 'congested' | 'notBound' | 'rateLimited' | 'unboundSource';

/** A relay's counters, all zero. */
export function createCounters(): RelayCounters {
  return {
    framesIn: 0,
    bytesIn: 0,
    framesRelayed: 0,
    bytesRelayed: 0,
    clientsTotal: 0,
    clientsRejected: 0,
    pairsTotal: 0,
    requestsTotal: 0,
    requestsFailed: 0,
    protocolErrors: 0,
    keepaliveTimeouts: 0,
    idleTimeouts: 0,
    backpressurePauses: 0,
    slowConsumers: 0,
    frameTimeouts: 0,
    partialFramePauses: 0,
    limitRefusals: {},
    logFieldsTruncated: 0,
    partialFrameBytes: 0,
    queuedBytes: 0,
    pairCount: 0,
    pendingCount: 0,
    boundPortCount: 0,
    datagramsRelayed: 0,
    datagramBytesRelayed: 0,
    datagramsDropped: { congested: 0, notBound: 0, rateLimited: 0, unboundSource: 0 },
    datagramPortCount: 0,
  };
}

/** Counts a refusal by a bound (the option's name), for /metrics. */
export function countRefusal(counters: RelayCounters, limit: string): void {
  counters.limitRefusals[limit] = (counters.limitRefusals[limit] ?? 0) + 1;
}
