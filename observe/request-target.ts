/**
 * Parsing what an HTTP client asks for, where every malformed input is the client's mistake:
 * a RequestError (answered 400 with its message), never an exception that becomes a 500.
 * `new URL(req.url, base)` is not used: it reads `//x` as a host (`GET //` threw), and nothing
 * here needs more than a path and a query.
 */
import type { StatusQuery } from '../actors/relay/relay.actor.ts';

/** A request the server cannot make sense of; its message says why. */
export class RequestError extends Error {}

/** The request target split into its path (not decoded) and query. */
export interface RequestTarget {
  route: string;
  query: URLSearchParams;
}

/** Splits an origin-form request target (`/path?query`); anything else is a RequestError. */
export function parseRequestTarget(target: string | undefined): RequestTarget {
  if (target === undefined || !target.startsWith('/')) {
    throw new RequestError('the request target must be a path starting with "/"');
  }
  const q = target.indexOf('?');
  // URLSearchParams leaves a malformed escape as it is; it never throws.
  return q < 0 ? { route: target, query: new URLSearchParams() } : { route: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

function count(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^\d{1,15}$/.test(raw) || !Number.isSafeInteger(n)) throw new RequestError(`?${name}= must be a whole number, not ${JSON.stringify(raw.slice(0, 32))}`);
  return n;
}

/** `?limit=` (at most `maxLimit`, which is also the default) and `?offset=` of /api/status. */
export function parseStatusQuery(query: URLSearchParams, maxLimit: number): StatusQuery {
  const limit = count(query, 'limit');
  return { limit: Math.min(limit ?? maxLimit, maxLimit), offset: count(query, 'offset') ?? 0 };
}
