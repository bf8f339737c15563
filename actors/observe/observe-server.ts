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
import type { Logger } from '../logger.ts';
import type { RelayMetrics } from './metrics.ts';
import type { DiscoveredMachine } from './machine-export.ts';
import { renderStateDiagramSvg } from './state-diagram.ts';

/** Loopback: the dashboard shows real IPs, so exposing it is an explicit choice (`--http-host`). */
export const DEFAULT_HTTP_HOST = '127.0.0.1';
/** Most frequent live push; bursts of set-up events within it are coalesced into one message. */
export const DEFAULT_PUSH_INTERVAL_MS = 250;
/** A push at least this often even when nothing changed, so ages and uptimes tick on the page. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;
/** Live-update subscribers at once; more get 503, so a runaway script cannot exhaust the relay. */
export const DEFAULT_MAX_EVENT_STREAMS = 64;

/** The static files of the page, served from memory after the first read. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));
const STATIC_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** Options of {@link startObserveServer}. */
export interface ObserveServerOptions {
  /** The JSON-able status served at /api/status and pushed on /api/events. */
  status: () => unknown;
  /**
   * Registers a listener called whenever something the status shows has changed, and returns
   * a function that removes it. @default undefined (only heartbeat pushes)
   */
  onChange?: (listener: () => void) => () => void;
  /** Served at /metrics; 404 when absent. @default undefined */
  metrics?: RelayMetrics;
  /** Machines drawn on the page and served at /api/machines. @default [] */
  machines?: readonly DiscoveredMachine[];
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
}

/** A running observation server. */
export interface ObserveServer {
  /** `http://host:port` (IPv6 hosts in brackets). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Ends live streams and stops listening. */
  close(): Promise<void>;
}

interface MachineView {
  id: string;
  exportName: string;
  source: string;
  definition: unknown;
  svg: string;
}

/** Starts the server; resolves once it is listening. */
export async function startObserveServer(options: ObserveServerOptions): Promise<ObserveServer> {
  const startedAt = Date.now();
  const pushIntervalMs = options.pushIntervalMs ?? DEFAULT_PUSH_INTERVAL_MS;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const maxStreams = options.maxEventStreams ?? DEFAULT_MAX_EVENT_STREAMS;
  const logger = options.logger;
  // Diagrams are drawn once: the layout depends only on the definition, highlights are CSS.
  const machines: MachineView[] = (options.machines ?? []).map((m) => ({
    id: m.id,
    exportName: m.exportName,
    source: m.source,
    definition: m.definition,
    svg: renderStateDiagramSvg(m.definition),
  }));
  const staticCache = new Map<string, Buffer>();
  const streams = new Set<http.ServerResponse>();

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
    // One serialisation per push however many pages are open.
    const message = `event: status\ndata: ${JSON.stringify(options.status())}\n\n`;
    for (const res of streams) res.write(message);
  };
  const schedulePush = () => {
    dirty = true;
    if (pushTimer === undefined && streams.size > 0) pushTimer = setTimeout(push, pushIntervalMs);
  };
  const offChange = options.onChange?.(schedulePush);
  const heartbeat = setInterval(() => {
    if (!dirty) push();
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const route = url.pathname;
    const file = STATIC_FILES[route];
    if (file) return serveStatic(res, file);
    switch (route) {
      case '/healthz':
        return sendJson(res, 200, { status: 'ok', uptimeMs: Date.now() - startedAt });
      case '/api/status':
        return sendJson(res, 200, options.status());
      case '/api/machines':
        return sendJson(res, 200, machines);
      case '/metrics': {
        if (!options.metrics) return sendJson(res, 404, { error: 'metrics are not enabled' });
        const text = await options.metrics.metrics();
        res.writeHead(200, { 'content-type': options.metrics.contentType, 'cache-control': 'no-store' });
        res.end(text);
        return;
      }
      case '/api/events': {
        if (streams.size >= maxStreams) return sendJson(res, 503, { error: 'too many live streams' });
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        // The first message is the full status, so a page never waits for a change to draw.
        res.write(`retry: 1000\nevent: status\ndata: ${JSON.stringify(options.status())}\n\n`);
        streams.add(res);
        req.on('close', () => streams.delete(res));
        return;
      }
    }
    const svg = /^\/api\/machines\/([^/]+)\.svg$/.exec(route);
    const machine = svg && machines.find((m) => m.id === decodeURIComponent(svg[1] as string));
    if (machine) {
      res.writeHead(200, { 'content-type': 'image/svg+xml; charset=utf-8' });
      res.end(machine.svg);
      return;
    }
    sendJson(res, 404, { error: 'not found' });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger?.error({ err: error, url: req.url }, 'observe request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.listen(options.port ?? 0, options.host ?? DEFAULT_HTTP_HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.address;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  logger?.info({ url }, 'observe server listening');

  return {
    url,
    host,
    port: address.port,
    close: async () => {
      offChange?.();
      clearInterval(heartbeat);
      if (pushTimer) clearTimeout(pushTimer);
      for (const res of streams) res.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
