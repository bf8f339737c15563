/**
 * The tunnels' typed errors. Each has a stable `code` (docs/TUNNELS.md, docs/ERRORS.md);
 * per-connection failures are logged with the code rather than thrown, because one TCP
 * connection failing must not stop the tunnel.
 */
import { AlphanetError } from '../protocol/errors.ts';

export type TunnelErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_NOT_ALLOWED'
  | 'ERR_LISTEN_FAILED'
  | 'ERR_TARGET_UNREACHABLE'
  | 'ERR_TUNNEL_CLOSED'
  | 'ERR_PROXY_HANDSHAKE';

/** Any error raised or logged by expose(), forward() and proxy(). */
export class TunnelError extends AlphanetError {
  declare readonly code: TunnelErrorCode;
  constructor(code: TunnelErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
