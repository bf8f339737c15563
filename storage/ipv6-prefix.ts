/**
 * IPv6 prefixes of real IPs, for the per-prefix assignment cap: one host on an IPv6 network
 * commonly holds a whole /64 (2^64 source addresses), so a cap per real IP caps nothing.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** At most this many virtual IPs per IPv6 prefix by default (docs/STORAGE.md, "IPv6"). */
export const DEFAULT_IPV6_PREFIX_CAP = 256;
/** The prefix the cap counts by default: the usual size of one site's network. */
export const DEFAULT_IPV6_PREFIX_LENGTH = 64;

/** The 8 16-bit groups of an IPv6 address, or undefined when it is not one. */
function groupsOf(text: string): number[] | undefined {
  const address = text.split('%')[0];
  if (!isIPv6(address)) return undefined;
  let tail: number[] = [];
  let body = address;
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (isIPv4(last)) {
    const [a, b, c, d] = last.split('.').map(Number);
    tail = [(a << 8) | b, (c << 8) | d];
    body = body.slice(0, lastColon + 1) + '0';
  }
  const [head, rest] = body.split('::');
  const parse = (part: string | undefined): number[] => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  let right = parse(rest);
  if (tail.length > 0) right = right.length > 0 ? right.slice(0, -1) : [];
  if (tail.length > 0 && rest === undefined) left.pop();
  const fill = 8 - left.length - right.length - tail.length;
  return [...left, ...new Array<number>(rest === undefined ? 0 : fill).fill(0), ...right, ...tail];
}

/**
 * The canonical prefix of an IPv6 real IP ("2001:db8:0:1::/64"), or undefined for IPv4 and
 * IPv4-mapped addresses, which the cap does not count.
 */
export function ipv6PrefixOf(realIp: string, length: number): string | undefined {
  const groups = groupsOf(realIp);
  if (groups === undefined || groups.length !== 8) return undefined;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return undefined;
  const masked = groups.map((g, i) => {
    const bits = Math.min(16, Math.max(0, length - i * 16));
    return bits === 0 ? 0 : g & (0xffff << (16 - bits)) & 0xffff;
  });
  // Shortest form: drop trailing zero groups behind a "::".
  let end = 8;
  while (end > 0 && masked[end - 1] === 0) end--;
  const head = masked.slice(0, end).map((g) => g.toString(16)).join(':');
  return `${end === 8 ? head : `${head}::`}/${length}`;
}
