/**
 * The one seam between the relay's handlers and the cluster (docs/CLUSTER.md "Across relays"):
 * a request whose destination port is not held on this relay is offered to the router before
 * it is refused as Offline / NotBound. A router that takes it prepares the route (a stand-in
 * connection for the remote host, holding the port) and then retries the request, which then
 * takes the ordinary local path; or it fails it with a §6 reason.
 */
import type { WireAddress } from '../../../protocol/index.ts';

export interface RemoteRequest {
  kind: 'status' | 'connect';
  /** The requesting connection's relay-local id. */
  clientId: number;
  /** The stamped source (the requester's virtual IP and port). */
  source: WireAddress;
  destination: WireAddress;
  /** Runs the request again, now that the destination port is held here (a no-op if the requester left). */
  retry(): void;
  /** Answers the request RequestFailed with this §6 reason. */
  fail(reason: number): void;
}

export interface RemoteRouter {
  /** True when the router takes the request (it will call retry or fail exactly once). */
  route(request: RemoteRequest): boolean;
}
