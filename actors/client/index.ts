/** The client API: connect to a relay, open virtual sockets, move bytes. */
export { connect, resolveIdentity, Client, parseRelayAddress, DEFAULT_RELAY, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RECONNECT_POLICY } from './client.ts';
export type { ConnectOptions, ReconnectPolicy, ClientView } from './client.ts';
export type { ActorView } from './actor-view.ts';
export type { Clock } from './timer.ts';
export { VirtualSocket, DEFAULT_ACCEPT_BACKLOG } from './virtual-socket.ts';
export type { ConnectionRequest, ListenOptions, SocketConnectOptions, VirtualSocketView } from './virtual-socket.ts';
export { VirtualConnection, toDuplex, WINDOW_UPDATE_THRESHOLD_BYTES, WINDOW_GROWTH_FACTOR } from './connection.ts';
export type { VirtualConnectionEvents } from './connection.ts';
export * from './errors.ts';
export { configDirectory, defaultIdentityPath, generateIdentity, loadIdentity, IDENTITY_FILE_NAME } from './identity.ts';
export type { Identity } from './identity.ts';
