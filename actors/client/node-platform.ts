/**
 * The client's Node platform (platform.ts): TCP for "host:port", the `ws` package for a
 * WebSocket URL (Node 20 has no global WebSocket; `ws` also dials from `localAddress`, which
 * decides the virtual IP), the Duplex view, ALPHANET_RELAY, and identity keys with end-to-end
 * encryption (node-identity.ts).
 *
 * A wss:// URL is dialled as the TCP port's TLS is (relay-dial.ts): TLS 1.3, the relay's key
 * checked against its pin before a byte is sent, and only then the WebSocket upgrade over that
 * socket. With no trust to check (`tls: false`), `ws` verifies the certificate against the
 * system's authorities, as a browser does (a relay behind a proxy with a real certificate).
 */
import type net from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import { silentLogger } from '../logger.ts';
import { DEFAULT_RELAY } from './client.ts';
import { toDuplex } from './duplex.ts';
import { NODE_IDENTITY } from './node-identity.ts';
import type { ClientPlatform } from './platform.ts';
import { RELAY_TLS_MIN_VERSION, dialRelaySocket, relayWhere } from './relay-dial.ts';
import { openTcpTransport } from './tcp-transport.ts';
import type { TransportOpener } from './transport.ts';
import { webSocketOpener, type WebSocketLike } from './web-socket-transport.ts';

/** `ws`'s options for the relay: no compression (the relay offers none, ws-server.ts), TLS 1.3 at least. */
function wsOptions(localAddress: string | undefined, socket: net.Socket | undefined): ClientOptions {
  return {
    perMessageDeflate: false,
    minVersion: RELAY_TLS_MIN_VERSION,
    ...(localAddress ? { localAddress } : {}),
    // The socket dialled and checked already: the upgrade request is its first application byte.
    ...(socket === undefined ? {} : { createConnection: () => socket }),
  };
}

const openWebSocket: TransportOpener = async (target, signal) => {
  const url = target.url!;
  if (target.tls === undefined || !/^wss:/i.test(url)) {
    return webSocketOpener((u, localAddress) => new WebSocket(u, wsOptions(localAddress, undefined)) as unknown as WebSocketLike)(target, signal);
  }
  const socket = await dialRelaySocket(
    { host: target.host, port: target.port, localAddress: target.localAddress, trust: target.tls, where: relayWhere(target.host, target.port), plaintextHint: 'use a ws:// URL' },
    signal,
  );
  try {
    return await webSocketOpener((u) => new WebSocket(u, wsOptions(undefined, socket)) as unknown as WebSocketLike)(target, signal);
  } catch (error) {
    socket.destroy();
    throw error;
  }
};

export const NODE_PLATFORM: ClientPlatform = {
  open: (target, signal) => (target.url === undefined ? openTcpTransport(target, signal) : openWebSocket(target, signal)),
  toDuplex,
  defaultRelay: () => process.env.ALPHANET_RELAY ?? DEFAULT_RELAY,
  silentLogger,
  identity: NODE_IDENTITY,
};
