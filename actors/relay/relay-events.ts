/**
 * The relay's typed bus: what metrics and the dashboard observe. Set-up and tear-down only;
 * data frames never emit (their counters are in `Relay.counters` and `status()`).
 */
import type { EventEmitter } from 'eventemitter3';

/** One end of a socket pair, "10.0.0.5:4000". */
export type PairEndAddress = string;

export type HandshakeOutcome = 'accepted' | 'denied' | 'not-listening' | 'offline' | 'timeout' | 'target-disconnected' | 'invalid' | 'limit';

export interface ClientConnectedEvent {
  /** Relay-local id of the TCP connection. */
  id: number;
  realIp: string;
  virtualIp: string;
  at: number;
}

export interface ClientDisconnectedEvent {
  id: number;
  realIp: string;
  /** Undefined when the client never finished set-up. */
  virtualIp: string | undefined;
  /** An ErrorCode name (e.g. 'KeepaliveTimeout') or 'TransportClosed'. */
  reason: string;
  message: string;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

export interface PairOpenedEvent {
  id: number;
  a: PairEndAddress;
  b: PairEndAddress;
  at: number;
}

export interface PairStateChangedEvent {
  id: number;
  /** The socket pair machine's state, e.g. 'active.endedByA'. */
  state: string;
}

export interface PairClosedEvent {
  id: number;
  a: PairEndAddress;
  b: PairEndAddress;
  /** A CloseReason name, 'Finished' (SocketEnd both ways), or how a request ended. */
  reason: string;
  bytesAToB: number;
  bytesBToA: number;
  /** From the accept (or the request, if it never opened) to now. */
  durationMs: number;
  /** True when the pair was ever in the active-socket table. */
  opened: boolean;
}

export interface HandshakeCompletedEvent {
  /** 'status' for SocketStatusRequest, 'connect' for SocketConnectionRequest. */
  kind: 'status' | 'connect';
  clientId: number;
  source: PairEndAddress;
  destination: PairEndAddress;
  outcome: HandshakeOutcome | 'listening' | 'not-bound';
  durationMs: number;
}

export interface RequestFailedEvent {
  clientId: number;
  /** A FailureReason name. */
  reason: string;
  kind: 'status' | 'connect' | 'bind';
}

export interface ProtocolErrorEvent {
  clientId: number;
  realIp: string;
  /** An ErrorCode name. */
  code: string;
  message: string;
}

export interface KeepaliveTimeoutEvent {
  clientId: number;
  realIp: string;
  virtualIp: string | undefined;
  silentMs: number;
}

export interface PortEvent {
  clientId: number;
  virtualIp: string;
  port: number;
}

/** A source stopped (or started again) being read because a destination's queue was full (§7). */
export interface FlowEvent {
  sourceId: number;
  /** The destination that filled up (paused) or the last one to drain (resumed). */
  destinationId: number;
  /** The destination's queued outgoing bytes at that moment. */
  queuedBytes: number;
}

export interface RelayLifecycleEvent {
  host: string;
  port: number;
}

/** Event name → listener arguments, for `new EventEmitter<RelayBusEvents>()`. */
export interface RelayBusEvents {
  'relay.listening': [RelayLifecycleEvent];
  'relay.closing': [RelayLifecycleEvent];
  'relay.closed': [RelayLifecycleEvent];
  'client.connected': [ClientConnectedEvent];
  'client.disconnected': [ClientDisconnectedEvent];
  'client.keepaliveTimeout': [KeepaliveTimeoutEvent];
  'client.protocolError': [ProtocolErrorEvent];
  'port.bound': [PortEvent];
  'port.released': [PortEvent];
  'pair.opened': [PairOpenedEvent];
  'pair.stateChanged': [PairStateChangedEvent];
  'pair.closed': [PairClosedEvent];
  'flow.paused': [FlowEvent];
  'flow.resumed': [FlowEvent];
  'handshake.completed': [HandshakeCompletedEvent];
  'request.failed': [RequestFailedEvent];
}

export type RelayBus = EventEmitter<RelayBusEvents>;
