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
 * An error's code (when it has a string one) and its words without that code: a system error as
 * the OS words it plus the address (`address already in use 127.0.0.1:8080`), another error's
 * message with the code taken out if the message repeats it.
 */
export function errorParts(error: unknown): { code?: string; text: string } {
  if (!(error instanceof Error)) return { text: String(error) };
  const { code, errno, address, port } = error as Error & SystemErrorFields;
  if (typeof code !== 'string') return { text: error.message };
  const system = typeof errno === 'number' ? getSystemErrorMap().get(errno) : undefined;
  if (system && system[0] === code) {
    const where = typeof address === 'string' ? ` ${address}${typeof port === 'number' ? `:${port}` : ''}` : '';
    return { code, text: `${system[1]}${where}` };
  }
  return { code, text: error.message.replace(new RegExp(`(^|\\s)${code}:?(?=\\s|$)`), '').trim() || error.message };
}

/**
 * `CODE: words` for an error with a string code (`EADDRINUSE: address already in use
 * 127.0.0.1:8080`); an error without a code is its message.
 */
export function describeError(error: unknown): string {
  const { code, text } = errorParts(error);
  return code === undefined ? text : `${code}: ${text}`;
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
