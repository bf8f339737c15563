/**
 * One program's connection to the proxy, from its first byte to being carried or refused: the
 * handshake in its dialect (bounded in time), the allow-list, the virtual connect, the answer.
 * proxy() owns the listener and the bookkeeping; this owns nothing but the one socket.
 */
import type net from 'node:net';
import type { Client } from '../actors/client/index.ts';
import type { Logger } from '../actors/logger.ts';
import type { AllowList } from './allow-list.ts';
import { TunnelError } from './errors.ts';
import { describe, type ConnectionFields, type TunnelLedger } from './ledger.ts';
import { dialectFor, type ProxyDialect } from './proxy-dialects.ts';
import { refusalOf } from './proxy-refusals.ts';

/**
 * After a refusal is written, time the program gets to read it and close. Closing at once with
 * its unread bytes in our receive buffer would send an RST that can overtake the refusal.
 */
export const PROXY_REFUSAL_LINGER_MS = 2_000;

/** The timers the proxy uses (handshake timeout, refusal linger), so specs can drive time. */
export interface ProxyTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_TIMERS: ProxyTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What serving one request needs from its proxy. */
export interface ProxyRequestContext {
  readonly client: Client;
  readonly ledger: TunnelLedger;
  readonly logger: Logger;
  readonly allowed: AllowList;
  readonly timers: ProxyTimers;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number | undefined;
  /** Aborts when the proxy stops taking requests: connects in flight are abandoned. */
  readonly stopping: AbortSignal;
  /** True once the proxy is closing: a connection that opens now is not carried. */
  closing(): boolean;
  /** The socket was handed to the ledger: no longer the proxy's to sweep. */
  carried(socket: net.Socket): void;
}

/** Reads `socket`'s request, then carries or refuses it. Never throws; failures are logged refusals. */
export function serveRequest(socket: net.Socket, context: ProxyRequestContext): void {
  const { ledger, timers, handshakeTimeoutMs } = context;
  const fields: ConnectionFields = { from: `${socket.remoteAddress}:${socket.remotePort}` };
  let dialect: ProxyDialect | undefined;
  const stopReading = (): void => {
    timers.clearTimeout(timer);
    socket.off('data', socketOnData);
    socket.off('end', socketOnEnd);
  };
  const timer = timers.setTimeout(() => {
    stopReading();
    const error = new TunnelError('ERR_PROXY_HANDSHAKE', `no complete request within ${handshakeTimeoutMs} ms`);
    ledger.refuse(fields, error);
    refuseAndClose(socket, dialect?.timedOut(error.message), timers);
  }, handshakeTimeoutMs);
  function socketOnData(chunk: Buffer): void {
    if (dialect === undefined) {
      dialect = dialectFor(chunk[0], { maxHeaderBytes: context.maxHeaderBytes });
      fields.protocol = dialect.protocol;
      context.logger.debug(fields, 'handshake started');
    }
    const step = dialect.write(chunk);
    if (step.type === 'more') {
      if (step.reply) socket.write(step.reply);
      return;
    }
    stopReading();
    if (step.type === 'refuse') {
      ledger.refuse(fields, step.error);
      refuseAndClose(socket, step.reply, timers);
      return;
    }
    // Bytes after the request wait, unread, until the virtual connection can take them.
    socket.pause();
    if (step.reply) socket.write(step.reply);
    const rest = dialect.rest();
    if (rest.length > 0) socket.unshift(rest);
    fields.to = `${step.address}:${step.port}`;
    void open(socket, dialect, { address: step.address, port: step.port }, fields, context);
  }
  function socketOnEnd(): void {
    stopReading();
    ledger.refuse(fields, new TunnelError('ERR_PROXY_HANDSHAKE', 'the program closed before its request was complete'));
    socket.destroy();
  }
  socket.on('data', socketOnData);
  socket.on('end', socketOnEnd);
}

/** The allow-list, the virtual connect, the answer, and the splice (or the refusal). */
async function open(
  socket: net.Socket,
  dialect: ProxyDialect,
  target: { address: string; port: number },
  fields: ConnectionFields,
  context: ProxyRequestContext,
): Promise<void> {
  const { client, ledger, timers } = context;
  if (!context.allowed(target.address)) {
    const error = new TunnelError('ERR_NOT_ALLOWED', `${target.address} is not on the proxy's allow-list`);
    ledger.refuse(fields, error);
    refuseAndClose(socket, dialect.refused('not-allowed', describe(error)), timers);
    return;
  }
  try {
    // A program that hangs up while we connect, or the proxy stopping, abandons the attempt.
    const attempt = AbortSignal.any([context.stopping, closedSignal(socket)]);
    const connection = await client.connect({ address: target.address, port: target.port, signal: attempt });
    if (context.closing()) {
      // Opened in the same moment the proxy closed, which has already swept its sockets.
      connection.close();
      socket.destroy();
      return;
    }
    socket.write(dialect.established({ address: client.virtualIp, port: connection.localPort }));
    context.carried(socket);
    ledger.carry(socket, connection, fields);
  } catch (cause) {
    ledger.refuse(fields, cause);
    refuseAndClose(socket, dialect.refused(refusalOf(cause), describe(cause)), timers);
  }
}

/** Says no (if the dialect can) and closes, reading and dropping what the program still sends. */
function refuseAndClose(socket: net.Socket, reply: Buffer | undefined, timers: ProxyTimers): void {
  if (socket.destroyed) return;
  if (reply) socket.end(reply);
  else socket.end();
  socket.resume();
  const linger = timers.setTimeout(() => socket.destroy(), PROXY_REFUSAL_LINGER_MS);
  socket.once('close', () => timers.clearTimeout(linger));
}

/** A signal that aborts when `socket` closes. */
function closedSignal(socket: net.Socket): AbortSignal {
  const controller = new AbortController();
  socket.once('close', () => controller.abort(new TunnelError('ERR_TUNNEL_CLOSED', 'the program closed its connection while it was being opened')));
  return controller.signal;
}
