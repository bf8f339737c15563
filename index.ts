/**
 * AlphaNET: a relay that gives every client a permanent virtual IPv4 address, and the client
 * toolkit to open virtual sockets through it.
 *
 * @example
 * ```ts
 * import { connect } from 'alphanet';
 * const client = await connect({ relay: '127.0.0.1:1337' });
 * const conn = await client.connect({ address: '10.0.0.2', port: 7 });
 * await conn.send(new TextEncoder().encode('hi'));
 * ```
 */
export * from './actors/client/index.ts';
export * from './tunnel/index.ts';
export { startRelay } from './actors/relay/index.ts';
export type { Relay, RelayOptions } from './actors/relay/index.ts';
export { openAddressStore, openMemoryAddressStore } from './storage/index.ts';
export type { AddressStore, AddressEntry } from './storage/index.ts';
export { AlphanetError, ProtocolError } from './protocol/errors.ts';
