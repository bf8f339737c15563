import type { PacketType } from './constants.ts';
import type { WireAddress } from './address.ts';

/** Client → relay, first frame on every connection (docs/PROTOCOL.md §3.1). */
export interface HelloPacket {
  type: typeof PacketType.Hello;
  version: number;
}
/** Relay → client, the answer to Hello: the client's permanent virtual IP and the relay's terms. */
export interface VirtualIpPacket {
  type: typeof PacketType.VirtualIp;
  version: number;
  ip: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  maxFrameBytes: number;
}
export interface PingPacket {
  type: typeof PacketType.Ping;
  nonce: number;
}
export interface PongPacket {
  type: typeof PacketType.Pong;
  nonce: number;
}
/** Fatal: the sender closes the TCP connection after it. */
export interface ErrorPacket {
  type: typeof PacketType.Error;
  code: number;
  message: string;
}
/** Client → relay: reserve a port of the client's virtual host (0 = relay picks an ephemeral one). */
export interface BindRequestPacket {
  type: typeof PacketType.BindRequest;
  requestId: number;
  port: number;
}
export interface BindResponsePacket {
  type: typeof PacketType.BindResponse;
  requestId: number;
  status: number;
  port: number;
}
/** Client → relay: release a port. No answer. */
export interface UnbindPacket {
  type: typeof PacketType.Unbind;
  port: number;
}
export interface SocketStatusRequestPacket {
  type: typeof PacketType.SocketStatusRequest;
  requestId: number;
  source: WireAddress;
  destination: WireAddress;
}
export interface SocketStatusResponsePacket {
  type: typeof PacketType.SocketStatusResponse;
  requestId: number;
  status: number;
}
export interface RequestFailedPacket {
  type: typeof PacketType.RequestFailed;
  requestId: number;
  reason: number;
}
export interface SocketConnectionRequestPacket {
  type: typeof PacketType.SocketConnectionRequest;
  requestId: number;
  /** 0 from the requesting client; assigned by the relay when forwarded to the target. */
  connectionId: number;
  source: WireAddress;
  destination: WireAddress;
}
export interface SocketConnectionResponsePacket {
  type: typeof PacketType.SocketConnectionResponse;
  requestId: number;
  connectionId: number;
  status: number;
}
export interface ArbitraryDataPacket {
  type: typeof PacketType.ArbitraryData;
  connectionId: number;
  data: Uint8Array;
}
/** Half-close: the sender will send no more ArbitraryData on this connection. */
export interface SocketEndPacket {
  type: typeof PacketType.SocketEnd;
  connectionId: number;
}
export interface SocketClosedPacket {
  type: typeof PacketType.SocketClosed;
  connectionId: number;
  reason: number;
}
/** Grants the peer `bytes` more ArbitraryData payload on this connection. */
export interface WindowUpdatePacket {
  type: typeof PacketType.WindowUpdate;
  connectionId: number;
  bytes: number;
}

/** Relay → client after a version-2 Hello (§2a): random bytes the client signs. */
export interface ChallengePacket {
  type: typeof PacketType.Challenge;
  nonce: Uint8Array;
}
/** Client → relay (§2a): its Ed25519 public key and its signature over context ‖ challenge. */
export interface IdentityProofPacket {
  type: typeof PacketType.IdentityProof;
  publicKey: Uint8Array;
  signature: Uint8Array;
}
/**
 * Relay → client (§2a, §6): the proven identity key of the other end of `connectionId`, sent
 * just before the SocketConnectionRequest (to the target) or the accepted
 * SocketConnectionResponse (to the origin) of that connection.
 */
export interface PeerKeyPacket {
  type: typeof PacketType.PeerKey;
  connectionId: number;
  publicKey: Uint8Array;
}
/** Client → relay: reserve a datagram port (0 = ephemeral); answered with BindResponse (§10). */
export interface DatagramBindPacket {
  type: typeof PacketType.DatagramBind;
  requestId: number;
  port: number;
}
/** Client → relay: release a datagram port. No answer (§10). */
export interface DatagramUnbindPacket {
  type: typeof PacketType.DatagramUnbind;
  port: number;
}
/**
 * One datagram (§10): c→r→c. The relay stamps `source.ip` with the sender's virtual IP and
 * forwards the frame unchanged otherwise, or drops it.
 */
export interface DatagramPacket {
  type: typeof PacketType.Datagram;
  source: WireAddress;
  destination: WireAddress;
  payload: Uint8Array;
}

export type Packet =
  | HelloPacket
  | VirtualIpPacket
  | PingPacket
  | PongPacket
  | ErrorPacket
  | BindRequestPacket
  | BindResponsePacket
  | UnbindPacket
  | SocketStatusRequestPacket
  | SocketStatusResponsePacket
  | RequestFailedPacket
  | SocketConnectionRequestPacket
  | SocketConnectionResponsePacket
  | ArbitraryDataPacket
  | SocketEndPacket
  | SocketClosedPacket
  | WindowUpdatePacket
  | ChallengePacket
  | IdentityProofPacket
  | PeerKeyPacket
  | DatagramBindPacket
  | DatagramUnbindPacket
  | DatagramPacket;

/** The packet whose `type` is T. */
export type PacketOf<T extends PacketType> = Extract<Packet, { type: T }>;
