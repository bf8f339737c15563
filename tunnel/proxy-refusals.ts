/**
 * Why the proxy said no, and how each of its two dialects says it: one table, so SOCKS5 reply
 * codes and HTTP statuses cannot drift apart (docs/TUNNELS.md "Any program through SOCKS").
 */
import type { HttpRefusalStatus } from './http-connect.ts';
import { SocksReply } from './socks5.ts';

/** The kinds of refusal a program can be told about. */
export type ProxyRefusal =
  | 'general-failure'
  | 'not-allowed'
  | 'host-unreachable'
  | 'connection-refused'
  | 'timeout'
  | 'command-not-supported'
  | 'address-type-not-supported';

/** Each refusal's SOCKS5 REP (RFC 1928 §6) and HTTP status. */
export const PROXY_REFUSALS: Record<ProxyRefusal, { socks: number; http: HttpRefusalStatus }> = {
  // The relay is down, the client closed, a relay limit: nothing to do with the target.
  'general-failure': { socks: SocksReply.GeneralFailure, http: 502 },
  'not-allowed': { socks: SocksReply.NotAllowed, http: 403 },
  'host-unreachable': { socks: SocksReply.HostUnreachable, http: 502 },
  'connection-refused': { socks: SocksReply.ConnectionRefused, http: 502 },
  // RFC 1928 has no "timed out"; curl and browsers show host unreachable as "could not connect".
  timeout: { socks: SocksReply.HostUnreachable, http: 504 },
  'command-not-supported': { socks: SocksReply.CommandNotSupported, http: 405 },
  'address-type-not-supported': { socks: SocksReply.AddressTypeNotSupported, http: 502 },
};

/**
 * The refusal for an error from client.connect() or the proxy's own checks, by its stable code
 * (docs/ERRORS.md). Anything unknown (relay lost, client closed, socket limits, an abort) is a
 * general failure: the program should not blame the target for it.
 */
export function refusalOf(error: unknown): ProxyRefusal {
  switch ((error as { code?: unknown } | undefined)?.code) {
    case 'ERR_TARGET_OFFLINE':
    case 'ERR_TARGET_UNREACHABLE':
      return 'host-unreachable';
    case 'ERR_NOT_LISTENING':
    case 'ERR_CONNECTION_REFUSED':
      return 'connection-refused';
    case 'ERR_NOT_ALLOWED':
      return 'not-allowed';
    case 'ERR_TIMEOUT':
      return 'timeout';
    default:
      return 'general-failure';
  }
}
