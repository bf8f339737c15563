import { formatIpv4, parseIpv4 } from '../protocol/address.ts';
import { StoreError } from './errors.ts';

/**
 * The CGNAT range (RFC 6598), as Tailscale uses: 4,194,302 usable addresses that are never routed
 * on the internet, so virtual IPs do not collide with a player's LAN or public addresses.
 */
export const DEFAULT_SUBNET = '100.64.0.0/10';

/** Largest prefix that still leaves a usable host between network and broadcast. */
const MAX_PREFIX = 30;

/** A parsed IPv4 subnet. Addresses are unsigned 32-bit integers. */
export interface Subnet {
  /** Canonical CIDR text, e.g. "100.64.0.0/10". */
  readonly cidr: string;
  readonly prefix: number;
  /** The network address (never handed out). */
  readonly network: number;
  /** The broadcast address (never handed out). */
  readonly broadcast: number;
  /** First usable address (network + 1). */
  readonly first: number;
  /** Number of usable addresses (size − 2). */
  readonly usable: number;
  /** True when `ip` is a usable host address of this subnet. */
  contains(ip: number): boolean;
}

/**
 * Parses "a.b.c.d/n". The host bits must be zero (a typo like 100.64.1.0/10 is refused rather than
 * silently widened) and n must be 0..30, so at least two addresses are usable.
 * @throws StoreError ERR_INVALID_SUBNET
 */
export function parseSubnet(cidr: string): Subnet {
  const invalid = (why: string): StoreError =>
    new StoreError('ERR_INVALID_SUBNET', `invalid subnet ${JSON.stringify(cidr)}: ${why}`);
  const slash = cidr.indexOf('/');
  if (slash < 0) throw invalid('expected a.b.c.d/prefix');
  const network = parseIpv4(cidr.slice(0, slash));
  if (network === undefined) throw invalid('not an IPv4 address');
  const prefixText = cidr.slice(slash + 1);
  if (!/^\d{1,2}$/.test(prefixText)) throw invalid('prefix must be a number');
  const prefix = Number(prefixText);
  if (prefix > MAX_PREFIX) throw invalid(`prefix must be at most ${MAX_PREFIX} to leave usable addresses`);
  const size = 2 ** (32 - prefix);
  if (network % size !== 0) throw invalid(`host bits are set; did you mean ${formatIpv4(network - (network % size))}/${prefix}?`);
  const broadcast = network + size - 1;
  return {
    cidr: `${formatIpv4(network)}/${prefix}`,
    prefix,
    network,
    broadcast,
    first: network + 1,
    usable: size - 2,
    contains: (ip: number) => Number.isInteger(ip) && ip > network && ip < broadcast,
  };
}
