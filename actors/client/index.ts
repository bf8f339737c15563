/** The client API: connect to a relay, open virtual sockets, move bytes. */
export { connect } from './connect.ts';
export { Client, parseRelayAddress, parseRelayUrl, DEFAULT_RELAY, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RECONNECT_POLICY } from './client.ts';
export type { ConnectOptions, ReconnectPolicy, ClientView } from './client.ts';
export type { ActorView } from './actor-view.ts';
export type { Clock } from './timer.ts';
export { VirtualSocket, DEFAULT_ACCEPT_BACKLOG } from './virtual-socket.ts';
export type { ConnectionRequest, ListenOptions, SocketConnectOptions, VirtualSocketView } from './virtual-socket.ts';
export { VirtualConnection, WINDOW_UPDATE_THRESHOLD_BYTES, WINDOW_GROWTH_FACTOR } from './connection.ts';
export { toDuplex } from './duplex.ts';
export type { VirtualConnectionEvents } from './connection.ts';
export { DatagramSocket, DEFAULT_DATAGRAM_RECEIVE_QUEUE, DATAGRAM_SEND_QUEUE_BYTES } from './datagram.ts';
export { MAX_DATAGRAM_PAYLOAD_BYTES } from '../../protocol/constants.ts';
export type { DatagramMessage, DatagramOptions, DatagramStats } from './datagram.ts';
export * from './errors.ts';
export { DEFAULT_RELAY_PORT } from './relay-address.ts';
export type { RelayAddress } from './relay-address.ts';
export { KNOWN_RELAYS_FILE, configDir, knownRelaysPath, readKnownRelays, pinRelay } from './relay-trust.ts';
export type { RelayTrustOptions } from './relay-trust.ts';
