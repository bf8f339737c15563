/**
 * Source addresses for load clients. Linux routes all of 127.0.0.0/8 to loopback, so every
 * client can have a real IP of its own (the relay keys virtual IPs by real IP) without leaving
 * the machine. 127.0.0.1 is left to the servers.
 */

/** Usable host numbers per /24 (1..254: no network, no broadcast). */
const HOSTS_PER_24 = 254;

/** Distinct ranges, so one scenario's clients never reuse another's real IPs. */
export const AddressBlock = {
  flows: 1,
  handshake: 2,
  scale: 3,
  userPath: 20,
  address: 10,
  prefill: 100,
} as const;

/**
 * The n-th source address (n ≥ 0) of `block` (1..254): 127.block.y.z with y.z counting up,
 * skipping .0 and .255 in the last octet. A block holds 65,024 addresses; larger n spill into
 * the next block.
 */
export function sourceAddress(block: number, n: number): string {
  const z = 1 + (n % HOSTS_PER_24);
  const y = Math.floor(n / HOSTS_PER_24) % 256;
  const x = block + Math.floor(n / (HOSTS_PER_24 * 256));
  return `127.${x}.${y}.${z}`;
}
