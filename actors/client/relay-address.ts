/**
 * The relay address a user writes, in one grammar for `connect({ relay })`, `ALPHANET_RELAY` and
 * the CLI's `--relay`: `host:port`, a host alone (port DEFAULT_RELAY_PORT), `[ipv6]:port`,
 * `[ipv6]`, or a bare IPv6 address, for TCP; or the relay's WebSocket URL, `ws://…` or
 * `wss://…`. It takes back exactly what the relay prints after `listening on` and after
 * `websocket on`. No Node built-ins: the browser client parses the same way.
 */
import { ClientError } from './errors.ts';

/** The relay's port when an address names only a host: the port a relay listens on by default. */
export const DEFAULT_RELAY_PORT = 1337;

/** A relay address, parsed. */
export interface RelayAddress {
  host: string;
  port: number;
}

/** Hex groups and colons (at least two), optionally ending in a dotted IPv4: enough to tell a bare IPv6 from host:port. */
const IPV6 = /^(?=.*:.*:)[0-9A-Fa-f:]+(?::\d{1,3}(?:\.\d{1,3}){3})?(?:%[\w.-]+)?$/;
const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]\s/]+))(?::(\d{1,5}))?$/;

/** True for a textual IPv6 address (with an optional zone), as far as telling it from `host:port` needs. */
export function looksLikeIpv6(text: string): boolean {
  return IPV6.test(text);
}

/**
 * Parses a relay address. Throws ClientError ERR_INVALID_ARGUMENT naming the forms it takes.
 * @example parseRelayAddress('127.0.0.1') // { host: '127.0.0.1', port: 1337 }
 * @example parseRelayAddress('[::1]:4000') // { host: '::1', port: 4000 }
 */
export function parseRelayAddress(text: string): RelayAddress {
  const value = text.trim();
  const bad = (): never => {
    throw new ClientError('ERR_INVALID_ARGUMENT', `"${text}" is not a relay address (HOST, HOST:PORT, [IPV6]:PORT or IPV6, or a ws:// or wss:// URL)`);
  };
  if (looksLikeIpv6(value)) return { host: value, port: DEFAULT_RELAY_PORT };
  const m = HOST_PORT.exec(value);
  if (!m) return bad();
  const host = m[1] ?? m[2];
  if (m[1] !== undefined && !looksLikeIpv6(host)) return bad();
  const port = m[3] === undefined ? DEFAULT_RELAY_PORT : Number(m[3]);
  if (port < 1 || port > 65535) return bad();
  return { host, port };
}

/** The path of the relay's WebSocket (actors/relay/ws-server.ts WS_PATH), taken when a URL names none. */
export const RELAY_WS_PATH = '/alphanet';

/** A relay reached over WebSocket: its URL, and host and port for messages and the known-relays file. */
export interface RelayUrl extends RelayAddress {
  url: string;
}

/** True for text that names the relay by a WebSocket URL (ws:// or wss://, any case). */
export function isRelayUrl(text: string): boolean {
  return /^\s*wss?:\/\//i.test(text);
}

/**
 * Parses a relay's WebSocket URL. A URL with no path at all gets the relay's, /alphanet (what the
 * relay prints after `websocket on` is taken as it is). Throws ClientError ERR_INVALID_ARGUMENT.
 * @example parseRelayUrl('wss://relay.example:8443') // { host: 'relay.example', port: 8443, url: 'wss://relay.example:8443/alphanet' }
 */
export function parseRelayUrl(text: string): RelayUrl {
  const value = text.trim();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ClientError('ERR_INVALID_ARGUMENT', `relay URL must be ws://host:port/path or wss://…, got "${text}"`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new ClientError('ERR_INVALID_ARGUMENT', `relay URL must start with ws:// or wss://, got "${text}"`);
  }
  if (url.hash !== '') throw new ClientError('ERR_INVALID_ARGUMENT', `a relay URL has no #fragment, got "${text}"`);
  // `new URL` makes "wss://h:1" and "wss://h:1/" alike: the text says whether a path was given.
  if (/^wss?:\/\/[^/?#]*$/i.test(value)) url.pathname = RELAY_WS_PATH;
  const port = url.port === '' ? (url.protocol === 'wss:' ? 443 : 80) : Number(url.port);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port, url: url.href };
}

/** A relay as a user writes it, either form: `{ host, port }` for TCP, with `url` for WebSocket. */
export function parseRelayTarget(text: string): RelayAddress | RelayUrl {
  return isRelayUrl(text) ? parseRelayUrl(text) : parseRelayAddress(text);
}
