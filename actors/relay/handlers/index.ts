/**
 * The dispatch table: one handler per packet type the relay receives (aedes' lib/handlers/ is
 * the model). ArbitraryData and WindowUpdate never come here (data-path.ts), nor does Datagram
 * (datagram-path.ts). A type with no
 * handler is one only the relay sends (VirtualIP, BindResponse, RequestFailed): §9 UnexpectedPacket.
 */
import { PacketType, type Packet, type PacketOf } from '../../../protocol/index.ts';
import type { Connection } from '../connection.ts';
import type { RelayContext } from '../context.ts';
import { onHello } from './hello.ts';
import { onPing } from './ping.ts';
import { onPong } from './pong.ts';
import { onError } from './error.ts';
import { onBindRequest } from './bind-request.ts';
import { onUnbind } from './unbind.ts';
import { onSocketStatusRequest } from './socket-status-request.ts';
import { onSocketStatusResponse } from './socket-status-response.ts';
import { onSocketConnectionRequest } from './socket-connection-request.ts';
import { onSocketConnectionResponse } from './socket-connection-response.ts';
import { onSocketEnd } from './socket-end.ts';
import { onSocketClosed } from './socket-closed.ts';
import { onIdentityProof } from './identity-proof.ts';
import { onDatagramBind } from './datagram-bind.ts';
import { onDatagramUnbind } from './datagram-unbind.ts';

/** Handles one decoded packet from a connection. */
export type Handler<T extends PacketType> = (ctx: RelayContext, conn: Connection, packet: PacketOf<T>) => void;

/** Handlers of packets allowed once the connection is ready (§2: Hello is the only one before). */
export const HANDLERS: { readonly [T in PacketType]?: Handler<T> } = {
  [PacketType.Ping]: onPing,
  [PacketType.Pong]: onPong,
  [PacketType.Error]: onError,
  [PacketType.BindRequest]: onBindRequest,
  [PacketType.Unbind]: onUnbind,
  [PacketType.SocketStatusRequest]: onSocketStatusRequest,
  [PacketType.SocketStatusResponse]: onSocketStatusResponse,
  [PacketType.SocketConnectionRequest]: onSocketConnectionRequest,
  [PacketType.SocketConnectionResponse]: onSocketConnectionResponse,
  [PacketType.SocketEnd]: onSocketEnd,
  [PacketType.SocketClosed]: onSocketClosed,
  [PacketType.DatagramBind]: onDatagramBind,
  [PacketType.DatagramUnbind]: onDatagramUnbind,
};

/** Hands a decoded control packet to its handler, or ends the connection for sending it now. */
export function dispatch(ctx: RelayContext, conn: Connection, packet: Packet): void {
  if (packet.type === PacketType.Hello) return onHello(ctx, conn, packet);
  // §2a: the one packet allowed while proving; its handler refuses it in any other phase.
  if (packet.type === PacketType.IdentityProof) return onIdentityProof(ctx, conn, packet);
  const handler = HANDLERS[packet.type] as Handler<PacketType> | undefined;
  if (conn.phase !== 'ready' || handler === undefined) return conn.unexpected(packet.type);
  handler(ctx, conn, packet as never);
}
