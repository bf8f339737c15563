/**
 * Shared set-up for tunnel specs: an in-process relay, a serving client (127.0.0.2) that
 * exposes a real TCP server, and a using client (127.0.0.3) that forwards a local port to it.
 */
import net from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Test } from 'tap';
import type { Logger } from '../../actors/logger.ts';
import { expose, forward } from '../../tunnel/index.ts';
import type { ExposeOptions, ExposeTunnel, ForwardTunnel } from '../../tunnel/index.ts';
import type { Client } from '../../actors/client/index.ts';
import type { Relay } from '../../actors/relay/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { within } from '../helpers/wait.ts';

export const MIB = 1024 * 1024;
/** How long collect() waits for a socket's end: transfers here are a few MiB to 64 MiB on loopback. */
export const COLLECT_TIMEOUT_MS = 60_000;
/** The virtual port the specs expose on. */
export const VIRTUAL_PORT = 80;

/** A pino logger whose JSON lines a spec can read back; `next(msg)` waits for the next line with that message. */
export function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>>; next: (msg: string) => Promise<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (line: Record<string, unknown>) => void }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const text of chunk.toString().split('\n')) {
        if (!text) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        const i = waiters.findIndex((w) => w.msg === line.msg);
        if (i >= 0) waiters.splice(i, 1)[0].resolve(line);
      }
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  // Each call takes the next line with that message not yet taken, whether logged already or later.
  const taken = new Set<Record<string, unknown>>();
  const next = (msg: string): Promise<Record<string, unknown>> => {
    const line = lines.find((l) => l.msg === msg && !taken.has(l));
    if (line) {
      taken.add(line);
      return Promise.resolve(line);
    }
    return within(`the log line "${msg}"`, new Promise((resolve) => waiters.push({ msg, resolve: (l) => (taken.add(l), resolve(l)) })));
  };
  return { logger, lines, next };
}

/** Listens on 127.0.0.1 port 0; closed (and its sockets destroyed) with the test. */
export async function tcpServer(t: Test, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return server;
}

/**
 * Everything a socket sends until its FIN, without destroying it: a for-await loop over a
 * socket destroys it at the end, which would forbid answering on the half-open connection.
 */
export function collect(socket: net.Socket, timeoutMs = COLLECT_TIMEOUT_MS): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const all = new Promise<Buffer>((resolve, reject) => {
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
  return within("a socket's end", all, timeoutMs).catch((error: Error) => {
    // The same error (its class and code), saying how far the reading got.
    error.message = `${error.message}; ${chunks.reduce((n, c) => n + c.length, 0)} bytes had arrived`;
    throw error;
  });
}

/** Resolves on 'close' (events.once would reject on the 'error' a reset brings) with hadError. */
export function closeOf(socket: net.Socket): Promise<boolean> {
  socket.on('error', () => {});
  return within("a socket's close", new Promise((resolve) => socket.once('close', resolve)));
}

export function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

export interface TunnelPair {
  relay: Relay;
  serving: Client;
  using: Client;
  exposed: ExposeTunnel;
  forwarded: ForwardTunnel;
  exposeLog: ReturnType<typeof recordingLogger>;
  forwardLog: ReturnType<typeof recordingLogger>;
}

/** expose(target) on 127.0.0.2 and forward(port 0 → it) on 127.0.0.3. */
export async function tunnelTo(
  t: Test,
  target: { host: string; port: number },
  extra: Partial<Pick<ExposeOptions, 'allow' | 'keepAliveMs'>> & { relay?: Parameters<typeof relayFor>[1] } = {},
): Promise<TunnelPair> {
  const { relay: relayOptions, ...tunnelOptions } = extra;
  const relay = await relayFor(t, relayOptions);
  const serving = await clientFor(t, relay, 2);
  const using = await clientFor(t, relay, 3);
  const exposeLog = recordingLogger();
  const forwardLog = recordingLogger();
  const exposed = await expose({ client: serving, port: VIRTUAL_PORT, target, logger: exposeLog.logger, ...tunnelOptions });
  t.teardown(() => exposed.close());
  const forwarded = await forward({
    client: using,
    localPort: 0,
    remote: { address: serving.virtualIp, port: VIRTUAL_PORT },
    logger: forwardLog.logger,
    keepAliveMs: tunnelOptions.keepAliveMs,
  });
  t.teardown(() => forwarded.close());
  return { relay, serving, using, exposed, forwarded, exposeLog, forwardLog };
}
