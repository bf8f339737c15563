/**
 * The relay's observation HTTP server: the dashboard page, `/api/status` (JSON), `/api/events`
 * (the same JSON pushed live with Server-Sent Events), `/api/machines` (definitions and SVG
 * diagrams), `/metrics` (Prometheus) and `/healthz`. SSE rather than WebSocket because updates
 * flow one way, EventSource reconnects by itself, and it needs nothing beyond node:http.
 * Bound to loopback by default: the status names every client's real IP.
 */
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../actors/logger.ts';
import { DEFAULT_STATUS_LIST_LIMIT, type StatusQuery } from '../actors/relay/relay.actor.ts';
import type { RelayMetrics } from './metrics.ts';
import type { MachineDescription } from './machine-export.ts';
import type { MachineSide } from '../machines/index.ts';
import { renderStateDiagramSvg } from './state-diagram.ts';
import { listenError } from './errors.ts';
import { EventStreams } from './event-streams.ts';
import { parseRequestTarget, parseStatusQuery, RequestError } from './request-target.ts';

export { DEFAULT_MAX_EVENT_STREAMS, DEFAULT_MAX_STREAM_QUEUED_BYTES, DEFAULT_STREAM_DRAIN_TIMEOUT_MS } from './event-streams.ts';
export { DEFAULT_STATUS_LIST_LIMIT };

/** Loopback: the dashboard shows real IPs, so exposing it is an explicit choice (`--http-host`). */
export const DEFAULT_HTTP_HOST = '127.0.0.1';
/** Most frequent live push; bursts of set-up events within it are coalesced into one message. */
export const DEFAULT_PUSH_INTERVAL_MS = 250;
/** A push at least this often even when nothing changed, so ages and uptimes tick on the page. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;
/** TCP connections to the HTTP server at once; more are refused (each holds a socket and parser). */
export const DEFAULT_HTTP_MAX_CONNECTIONS = 256;

/** The static files of the page, served from memory after the first read. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));
const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** What the server reads of a status: whether its lists were capped (for /metrics). */
interface PagedStatus {
  list?: { truncated?: { clients?: boolean; pairs?: boolean } };
}

/** Options of {@link startObserveServer}. */
export interface ObserveServerOptions {
  /** The JSON-able status served at /api/status (one page) and pushed on /api/events. */
  status: (query: StatusQuery) => object;
  /**
   * Registers a listener called whenever something the status shows has changed, and returns
   * a function that removes it. @default undefined (only heartbeat pushes)
   */
  onChange?: (listener: () => void) => () => void;
  /** Served at /metrics; 404 when absent. @default undefined */
  metrics?: RelayMetrics;
  /** Machines drawn on the page and served at /api/machines. @default [] */
  machines?: readonly MachineDescription[];
  /** @default DEFAULT_HTTP_HOST ('127.0.0.1') */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default undefined (nothing logged) */
  logger?: Logger;
  /** @default DEFAULT_PUSH_INTERVAL_MS (250 ms) */
  pushIntervalMs?: number;
  /** @default DEFAULT_HEARTBEAT_INTERVAL_MS (2 s) */
  heartbeatIntervalMs?: number;
  /** @default DEFAULT_MAX_EVENT_STREAMS (64) */
  maxEventStreams?: number;
  /** Bytes one live stream may have queued before it is cut. @default DEFAULT_MAX_STREAM_QUEUED_BYTES (1 MiB) */
  maxStreamQueuedBytes?: number;
  /** A live stream that has not drained for this long is cut. @default DEFAULT_STREAM_DRAIN_TIMEOUT_MS (15 s) */
  streamDrainTimeoutMs?: number;
  /** Most clients and most pairs one status lists; `?limit=` may ask for fewer. @default DEFAULT_STATUS_LIST_LIMIT (100) */
  statusListLimit?: number;
  /** @default DEFAULT_HTTP_MAX_CONNECTIONS (256) */
  maxConnections?: number;
}

/** A running observation server. */
export interface ObserveServer {
  /** `http://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Open live-update streams. */
  readonly streams: EventStreams;
  /** Ends live streams and stops listening. */
  close(): Promise<void>;
}

interface MachineView {
  id: string;
  side: MachineSide;
  source: string;
  definition: unknown;
  svg: string;
}

/** Starts the server; resolves once it is listening, rejects with ERR_HTTP_LISTEN if it cannot. */
export async function startObserveServer(options: ObserveServerOptions): Promise<ObserveServer> {
  const startedAt = Date.now();
  const pushIntervalMs = options.pushIntervalMs ?? DEFAULT_PUSH_INTERVAL_MS;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const listLimit = options.statusListLimit ?? DEFAULT_STATUS_LIST_LIMIT;
  const logger = options.logger;
  const httpMetrics = options.metrics?.http;
  // Diagrams are drawn once: the layout depends only on the definition, highlights are CSS.
  // In the background, so laying them out does not delay listening (or a failed start).
  const machinesReady: Promise<MachineView[]> = Promise.all(
    (options.machines ?? []).map(async (m) => ({
      id: m.id,
      side: m.side,
      source: m.source,
      definition: m.definition,
      svg: await renderStateDiagramSvg(m.definition),
    })),
  );
  machinesReady.catch((error: unknown) => logger?.error({ err: error }, 'laying out the machine diagrams failed'));
  const staticCache = new Map<string, Buffer>();
  const streams = new EventStreams({
    maxStreams: options.maxEventStreams,
    maxQueuedBytes: options.maxStreamQueuedBytes,
    drainTimeoutMs: options.streamDrainTimeoutMs,
    metrics: httpMetrics,
    logger,
  });

  /** One capped page of the status; counted when a list was cut short. */
  const page = (query: StatusQuery) => {
    const status = options.status(query);
    const { list } = status as PagedStatus;
    if (list?.truncated?.clients || list?.truncated?.pairs) httpMetrics?.statusTruncated();
    return status;
  };
  const statusMessage = () => `event: status\ndata: ${JSON.stringify(page({ limit: listLimit }))}\n\n`;

  const sendJson = (res: http.ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(text);
  };

  let dirty = false;
  let pushTimer: NodeJS.Timeout | undefined;
  const push = () => {
    pushTimer = undefined;
    dirty = false;
    if (streams.size === 0) return;
    // One capped serialisation per push however many pages are open.
    streams.send(statusMessage());
  };
  const schedulePush = () => {
    dirty = true;
    if (pushTimer === undefined && streams.size > 0) pushTimer = setTimeout(push, pushIntervalMs);
  };
  const offChange = options.onChange?.(schedulePush);
  const heartbeat = setInterval(() => {
    if (!dirty) push();
    streams.sweep();
  }, heartbeatIntervalMs);
  heartbeat.unref();

  const serveStatic = async (res: http.ServerResponse, entry: { file: string; type: string }) => {
    let body = staticCache.get(entry.file);
    if (!body) {
      body = await readFile(path.join(DASHBOARD_DIR, entry.file));
      staticCache.set(entry.file, body);
    }
    res.writeHead(200, { 'content-type': entry.type, 'cache-control': 'no-cache' });
    res.end(body);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    // Bad paths and queries are the caller's mistake: 400, never a 500 (RequestError).
    const { route, query } = parseRequestTarget(req.url);
    const file = STATIC_FILES[route];
    if (file) return serveStatic(res, file);
    switch (route) {
      case '/healthz':
        return sendJson(res, 200, { status: 'ok', uptimeMs: Date.now() - startedAt });
      case '/api/status':
        return sendJson(res, 200, page(parseStatusQuery(query, listLimit)));
      case '/api/machines':
        return sendJson(res, 200, await machinesReady);
      case '/metrics': {
        if (!options.metrics) return sendJson(res, 404, { error: 'metrics are not enabled' });
        const text = await options.metrics.metrics();
        res.writeHead(200, { 'content-type': options.metrics.contentType, 'cache-control': 'no-store' });
        res.end(text);
        return;
      }
      case '/api/events': {
        if (streams.full) {
          httpMetrics?.streamRejected();
          return sendJson(res, 503, { error: 'too many live streams' });
        }
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        if (req.method === 'HEAD') return void res.end();
        // The first message is the current status, so a page never waits for a change to draw.
        streams.open(req, res, `retry: 1000\n${statusMessage()}`);
        return;
      }
    }
    const svg = /^\/api\/machines\/([^/]+)\.svg$/.exec(route);
    if (svg) {
      const id = decodePathSegment(svg[1] as string);
      const machine = (await machinesReady).find((m) => m.id === id);
      if (machine) {
        res.writeHead(200, { 'content-type': 'image/svg+xml; charset=utf-8' });
        res.end(machine.svg);
        return;
      }
    }
    sendJson(res, 404, { error: 'not found' });
  };

  const server = http.createServer((req, res) => {
    res.once('finish', () => httpMetrics?.response(res.statusCode));
    handle(req, res).catch((error: unknown) => {
      if (error instanceof RequestError) {
        if (!res.headersSent) sendJson(res, 400, { error: error.message });
        return;
      }
      logger?.error({ err: error, url: req.url?.slice(0, 256) }, 'observe request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.maxConnections = options.maxConnections ?? DEFAULT_HTTP_MAX_CONNECTIONS;
  server.on('drop', () => httpMetrics?.connectionDropped());
  const host = options.host ?? DEFAULT_HTTP_HOST;
  const requestedPort = options.port ?? 0;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(requestedPort, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    offChange?.();
    clearInterval(heartbeat);
    throw listenError(host, requestedPort, error);
  }
  const address = server.address() as AddressInfo;
  const url = `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  logger?.info({ url }, 'observe server listening');

  return {
    url,
    host: address.address,
    port: address.port,
    streams,
    close: async () => {
      offChange?.();
      clearInterval(heartbeat);
      if (pushTimer) clearTimeout(pushTimer);
      streams.closeAll();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** decodeURIComponent, with a malformed escape (`%E0%A4%A`) as a 400 rather than a URIError. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new RequestError(`malformed percent-encoding in the path: ${JSON.stringify(segment.slice(0, 64))}`);
  }
}
