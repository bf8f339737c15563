/**
 * Metrics of the observation HTTP server itself: what it answered, its live-update streams and
 * every bound it enforces (docs/OBSERVABILITY.md), on the relay's own registry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Why a live-update stream was cut. */
export type StreamDropReason = 'queue' | 'stalled';

/** What the observation server reports; created by createRelayMetrics, fed by the server. */
export interface HttpMetrics {
  /** One response sent, by status code. */
  response(code: number): void;
  /** A stream refused because `maxEventStreams` were open. */
  streamRejected(): void;
  /** A stream cut for a full queue or no drain within the timeout. */
  streamDropped(reason: StreamDropReason): void;
  /** A status response or push whose lists were capped. */
  statusTruncated(): void;
  /** A TCP connection refused because `maxConnections` were open. */
  connectionDropped(): void;
  /** Lets the gauges read the server's live streams and their queued bytes. */
  readStreams(read: () => { streams: number; queuedBytes: number }): void;
}

/** Registers the HTTP server's metrics on `registry` (names start with `prefix`). */
export function registerHttpMetrics(registry: Registry, prefix: string): HttpMetrics {
  let read = () => ({ streams: 0, queuedBytes: 0 });
  const responses = new Counter({
    name: `${prefix}http_responses_total`,
    help: 'Responses of the observation HTTP server, by status code (a 5xx is a bug).',
    labelNames: ['code'],
    registers: [registry],
  });
  new Gauge({
    name: `${prefix}http_event_streams`,
    help: 'Open /api/events live-update streams.',
    registers: [registry],
    collect() {
      this.set(read().streams);
    },
  });
  new Gauge({
    name: `${prefix}http_event_stream_queued_bytes`,
    help: 'Bytes queued in the relay for all /api/events streams (bounded per stream by --http-stream-max-queued-bytes).',
    registers: [registry],
    collect() {
      this.set(read().queuedBytes);
    },
  });
  const rejected = new Counter({
    name: `${prefix}http_event_streams_rejected_total`,
    help: '/api/events requests refused with 503 because --http-max-streams streams were open.',
    registers: [registry],
  });
  const dropped = new Counter({
    name: `${prefix}http_event_streams_dropped_total`,
    help: '/api/events streams cut: reason "queue" (over --http-stream-max-queued-bytes) or "stalled" (no drain within --http-stream-drain-timeout).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const truncated = new Counter({
    name: `${prefix}http_status_truncated_total`,
    help: 'Status responses and pushes whose client or pair list was capped at the list limit.',
    registers: [registry],
  });
  const connectionsDropped = new Counter({
    name: `${prefix}http_connections_dropped_total`,
    help: 'TCP connections to the HTTP server refused because --http-max-connections were open.',
    registers: [registry],
  });
  return {
    response: (code) => responses.inc({ code: String(code) }),
    streamRejected: () => rejected.inc(),
    streamDropped: (reason) => dropped.inc({ reason }),
    statusTruncated: () => truncated.inc(),
    connectionDropped: () => connectionsDropped.inc(),
    readStreams: (reader) => {
      read = reader;
    },
  };
}
