/**
 * The real IP of a WebSocket client (docs/SECURITY.md "Behind a proxy"): the TCP peer, unless
 * that peer is a proxy the operator trusts (`--ws-trust-proxy`), in which case the right-most
 * address in X-Forwarded-For that is not itself a trusted proxy. Everything left of that hop was
 * written by the client and proves nothing; a header from an untrusted peer is ignored.
 */
import net from 'node:net';
import { normaliseRealIp } from '../../protocol/index.ts';
import { AlphanetError } from '../../protocol/errors.ts';

/** The header a trusted proxy names the client in. */
export const FORWARDED_FOR_HEADER = 'x-forwarded-for';

/** Thrown for a `trustProxy` entry that is not an address or CIDR. */
export class TrustProxyError extends AlphanetError {
  constructor(message: string) {
    super('ERR_INVALID_ARGUMENT', message);
  }
}

/** The trusted proxies, as a BlockList (which matches IPv4 and IPv6 subnets). */
export function trustedProxies(cidrs: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of cidrs) {
    const [address, bits, extra] = entry.trim().split('/');
    const family = net.isIP(address);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
      throw new TrustProxyError(`trusted proxy must be an address or CIDR (10.0.0.0/8, ::1), got "${entry}"`);
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

function isTrusted(list: net.BlockList, address: string): boolean {
  return list.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
}

/**
 * The client's real IP: `peer` (the TCP peer), or when `peer` is a trusted proxy, the right-most
 * untrusted hop of `forwardedFor`. A hop that is not an address ends the walk at the hop before it.
 */
export function realIpOf(peer: string, forwardedFor: string | string[] | undefined, trusted: net.BlockList | undefined): string {
  let ip = normaliseRealIp(peer);
  if (trusted === undefined || forwardedFor === undefined || ip === '' || !isTrusted(trusted, ip)) return ip;
  // Several X-Forwarded-For headers are one list, in order (RFC 7230 §3.2.2).
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normaliseRealIp(hops[i].trim());
    if (net.isIP(hop) === 0) break;
    ip = hop;
    if (!isTrusted(trusted, hop)) break;
  }
  return ip;
}
