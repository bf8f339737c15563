/**
 * The proxy's allow-list: virtual IPv4 addresses and CIDR blocks it may reach. Parsed once, so
 * a typo is refused when the proxy starts rather than silently letting nothing (or all) through.
 */
import { formatIpv4, parseIpv4 } from '../protocol/index.ts';
import { TunnelError } from './errors.ts';

/** Answers whether a virtual IPv4 address is on the list. */
export type AllowList = (address: string) => boolean;

/**
 * Parses entries like "10.0.0.7" and "10.0.0.0/16" (host bits must be zero, so "10.0.3.0/16" is
 * refused with the block it probably meant). Undefined or empty allows every address.
 * @throws TunnelError ERR_INVALID_ARGUMENT naming the bad entry
 */
export function parseAllowList(entries: readonly string[] | undefined): AllowList {
  if (entries === undefined || entries.length === 0) return () => true;
  const blocks = entries.map(parseBlock);
  return (address) => {
    const ip = parseIpv4(address);
    return ip !== undefined && blocks.some((b) => ip - (ip % b.size) === b.network);
  };
}

function parseBlock(entry: string): { network: number; size: number } {
  const [addressText, prefixText, extra] = entry.trim().split('/');
  const network = parseIpv4(addressText);
  const prefix = prefixText === undefined ? 32 : /^\d{1,2}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (network === undefined || extra !== undefined || !(prefix >= 0 && prefix <= 32)) {
    throw new TunnelError('ERR_INVALID_ARGUMENT', `"${entry}" is not a virtual IPv4 address or CIDR block (a.b.c.d or a.b.c.d/n)`);
  }
  const size = 2 ** (32 - prefix);
  if (network % size !== 0) {
    throw new TunnelError('ERR_INVALID_ARGUMENT', `"${entry}" has host bits set; did you mean ${formatIpv4(network - (network % size))}/${prefix}?`);
  }
  return { network, size };
}
