/**
 * What differs between the client in Node and in a browser, given to the Client by its entry
 * point: connect.ts (Node: TCP, WebSocket through `ws`, the Duplex view, ALPHANET_RELAY) or
 * browser.ts (the global WebSocket only). client.ts itself imports nothing Node-only, so the
 * browser bundle can hold it.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.ts';
import type { VirtualConnection } from './connection.ts';
import type { TransportOpener } from './transport.ts';

export interface ClientPlatform {
  /** Opens the relay connection (TCP for host:port, WebSocket for a ws:// or wss:// URL). */
  readonly open: TransportOpener;
  /** The Duplex view, where there are Node streams. */
  readonly toDuplex: ((connection: VirtualConnection) => Duplex) | undefined;
  /** The relay when the options name none: "host:port", or a WebSocket URL. */
  defaultRelay(): string;
  /** The logger when the options give none: silent (pino's in Node; a no-op in a browser, so pino stays out of the bundle). */
  silentLogger(): Logger;
}
