/**
 * The client's Node platform (platform.ts): TCP for "host:port", the `ws` package for a
 * WebSocket URL (Node 20 has no global WebSocket; `ws` also dials from `localAddress`, which
 * decides the virtual IP), the Duplex view, ALPHANET_RELAY, and identity keys with end-to-end
 * encryption (node-identity.ts).
 */
import { WebSocket } from 'ws';
import { silentLogger } from '../logger.ts';
import { DEFAULT_RELAY } from './client.ts';
import { toDuplex } from './duplex.ts';
import { NODE_IDENTITY } from './node-identity.ts';
import type { ClientPlatform } from './platform.ts';
import { openTcpTransport } from './tcp-transport.ts';
import { webSocketOpener, type WebSocketLike } from './web-socket-transport.ts';

const openWebSocket = webSocketOpener(
  (url, localAddress) =>
    new WebSocket(url, {
      // The relay does not compress (ws-server.ts); not offering it saves a round of negotiation.
      perMessageDeflate: false,
      ...(localAddress ? { localAddress } : {}),
    }) as unknown as WebSocketLike,
);

export const NODE_PLATFORM: ClientPlatform = {
  open: (target, signal) => (target.url === undefined ? openTcpTransport(target, signal) : openWebSocket(target, signal)),
  toDuplex,
  defaultRelay: () => process.env.ALPHANET_RELAY ?? DEFAULT_RELAY,
  silentLogger,
  identity: NODE_IDENTITY,
};
