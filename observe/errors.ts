/** The observation server's typed errors (docs/ERRORS.md). */
import { AlphanetError } from '../protocol/errors.ts';

export type ObserveErrorCode = 'ERR_HTTP_LISTEN';

/** The dashboard/metrics HTTP server could not start. */
export class ObserveError extends AlphanetError {
  declare readonly code: ObserveErrorCode;
  constructor(code: ObserveErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this machine’s',
};

/** `cannot serve HTTP on 127.0.0.1:8081: the address is already in use (EADDRINUSE)`, once. */
export function listenError(host: string, port: number, cause: unknown): ObserveError {
  const code = (cause as { code?: string }).code;
  const reason = (code && LISTEN_REASONS[code]) ?? (cause as Error).message;
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new ObserveError('ERR_HTTP_LISTEN', `cannot serve HTTP on ${where}: ${reason}${code ? ` (${code})` : ''}`, { cause });
}
