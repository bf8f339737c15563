/**
 * The pieces the relay's bounds are built from (docs/RELAY.md "Bounds", docs/SECURITY.md):
 * which real IPs count as one host, a counter per host, and bounded text for logs and events.
 */
import net from 'node:net';

/**
 * The key per-host limits count under: an IPv4 address as it is, an IPv6 address cut to its
 * first `prefixLength` bits ("2001:db8:0:1::/64"). One IPv6 subscriber is given a whole /64 (or
 * more), so counting each of its 2^64 addresses apart would give it unlimited connections.
 */
export function hostKey(realIp: string, ipv6PrefixLength: number): string {
  if (net.isIPv4(realIp) || !net.isIPv6(realIp.split('%')[0])) return realIp;
  const groups = expandIpv6(realIp.split('%')[0]);
  const bits = Math.max(0, Math.min(128, ipv6PrefixLength));
  const kept: string[] = [];
  for (let g = 0; g < 8; g++) {
    const keep = Math.max(0, Math.min(16, bits - g * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    kept.push((groups[g] & mask).toString(16));
  }
  return `${kept.join(':')}/${bits}`;
}

/** The eight 16-bit groups of a valid IPv6 address (with "::" and an embedded IPv4 tail). */
function expandIpv6(text: string): number[] {
  let tail: number[] = [];
  let head = text;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const [a, b, c, d] = text.slice(lastColon + 1).split('.').map(Number);
    tail = [(a << 8) | b, (c << 8) | d];
    head = text.slice(0, lastColon + 1) + (text[lastColon - 1] === ':' ? '' : '0');
    if (head.endsWith(':0')) head = head.slice(0, -2);
    else if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const parse = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const l = parse(left);
  const r = parse(right);
  const fill = 8 - tail.length - l.length - r.length;
  return [...l, ...(right === undefined ? [] : new Array<number>(Math.max(0, fill)).fill(0)), ...r, ...tail].slice(0, 8);
}

/** Counts per key; a key at 0 is removed, so the map holds only live hosts. */
export class Tally {
  readonly #counts = new Map<string, number>();

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  add(key: string, n: number): void {
    const next = (this.#counts.get(key) ?? 0) + n;
    if (next > 0) this.#counts.set(key, next);
    else this.#counts.delete(key);
  }

  get size(): number {
    return this.#counts.size;
  }
}

/**
 * `text` cut to `maxChars` characters with a marker saying how long it was, for any log field
 * or bus field a client controls (issue 9, finding 6). Returns whether it was cut.
 */
export function boundedText(text: string, maxChars: number): { text: string; truncated: boolean } {
  if (text.length <= maxChars) return { text, truncated: false };
  return { text: `${text.slice(0, maxChars)}…[truncated, ${text.length} chars]`, truncated: true };
}
