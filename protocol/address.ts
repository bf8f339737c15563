/**
 * Virtual IPv4 addresses travel as unsigned 32-bit integers (network byte order on the wire);
 * these helpers convert to and from dotted quads at the API's edge.
 */

/** A virtual socket address: an IPv4 address as an unsigned 32-bit integer, and a port. */
export interface WireAddress {
  ip: number;
  port: number;
}

const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses "10.1.2.3" into an unsigned 32-bit integer, or returns undefined when it is not one. */
export function parseIpv4(text: string): number | undefined {
  const m = DOTTED_QUAD.exec(text);
  if (m === null) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** Formats an unsigned 32-bit integer as a dotted quad. */
export function formatIpv4(ip: number): string {
  return `${(ip >>> 24) & 255}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** True for an integer port 0..65535. */
export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** "10.1.2.3:80" for logs. */
export function formatAddress(address: WireAddress): string {
  return `${formatIpv4(address.ip)}:${address.port}`;
}

/**
 * Normalises the remote address Node reports for a TCP peer: an IPv4-mapped IPv6 address
 * ("::ffff:127.0.0.2") is the same host as its IPv4 form.
 */
export function normaliseRealIp(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
