/**
 * One line of words for an error in a log field or on stderr, with its code said once. Node's
 * system errors repeat theirs in the message (`listen EADDRINUSE: address already in use
 * 127.0.0.1:8080`); prefixed with the code again it read `EADDRINUSE: listen EADDRINUSE: …`.
 */
import { getSystemErrorMap } from 'node:util';

/** The fields Node puts on a system error (ECONNREFUSED, EADDRINUSE, …). */
interface SystemErrorFields {
  code?: unknown;
  errno?: unknown;
  address?: unknown;
  port?: unknown;
}

/**
 * `CODE: words` for an error with a string code: a system error as the OS words it plus the
 * address (`EADDRINUSE: address already in use 127.0.0.1:8080`), another coded error with its
 * message as is; an error without a code is its message.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, errno, address, port } = error as Error & SystemErrorFields;
  if (typeof code !== 'string') return error.message;
  const system = typeof errno === 'number' ? getSystemErrorMap().get(errno) : undefined;
  if (system && system[0] === code) {
    const where = typeof address === 'string' ? ` ${address}${typeof port === 'number' ? `:${port}` : ''}` : '';
    return `${code}: ${system[1]}${where}`;
  }
  return error.message.includes(code) ? error.message : `${code}: ${error.message}`;
}

/**
 * {@link describeError} naming `where` (HOST:PORT) once: as the system error words it
 * (`EADDRINUSE: address already in use 127.0.0.1:8080`), else in front (`nosuch:80: getaddrinfo
 * ENOTFOUND nosuch`).
 */
export function describeErrorAt(error: unknown, where: string): string {
  const text = describeError(error);
  return text.includes(where) ? text : `${where}: ${text}`;
}
