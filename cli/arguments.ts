/** Argument parsers the tunnel commands share: ports, HOST:PORT endpoints, milliseconds. */
import net from 'node:net';
import { InvalidArgumentError } from 'commander';

/** A port argument in `min`..65535, for commander. */
export function portArgument(min: number): (text: string) => number {
  return (text) => {
    const port = Number(text);
    if (!/^\d+$/.test(text) || port < min || port > 65535) throw new InvalidArgumentError(`"${text}" is not a port ${min}..65535`);
    return port;
  };
}

/** "HOST:PORT" (IPv6 in brackets) for commander. */
export function endpointArgument(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new InvalidArgumentError(`"${text}" is not HOST:PORT`);
  return { host: m[1] ?? m[2], port };
}

/** "ADDRESS:VPORT" with a virtual IPv4 address, checked before anything connects. */
export function virtualEndpointArgument(text: string): { host: string; port: number } {
  const endpoint = endpointArgument(text);
  if (!net.isIPv4(endpoint.host)) throw new InvalidArgumentError(`"${endpoint.host}" is not a virtual IPv4 address (ADDRESS:VPORT)`);
  return endpoint;
}

/** A comma-separated list of virtual IPv4 addresses. */
export function allowArgument(text: string): string[] {
  const ips = text.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = ips.find((ip) => !net.isIPv4(ip));
  if (bad !== undefined || ips.length === 0) throw new InvalidArgumentError(`"${bad ?? text}" is not a virtual IPv4 address`);
  return ips;
}

/** Milliseconds 0..1 hour. */
export function graceArgument(text: string): number {
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms > 3_600_000) throw new InvalidArgumentError(`"${text}" is not a number of milliseconds 0..3600000`);
  return ms;
}
