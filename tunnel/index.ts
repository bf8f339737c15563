/** Tunnels: carry real TCP applications over AlphaNET (docs/TUNNELS.md). */
export { expose, DEFAULT_TARGET_CONNECT_TIMEOUT_MS } from './expose.ts';
export type { ExposeOptions, ExposeTunnel } from './expose.ts';
export { forward } from './forward.ts';
export type { ForwardOptions, ForwardTunnel } from './forward.ts';
export { DEFAULT_FORWARD_LISTEN_HOST } from './forward-options.ts';
export type { ForwardCommonOptions } from './forward-options.ts';
export {
  proxy,
  DEFAULT_PROXY_LISTEN_HOST,
  DEFAULT_PROXY_PORT,
  DEFAULT_PROXY_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_PROXY_MAX_HANDSHAKES,
} from './proxy.ts';
export type { ProxyOptions, ProxyTunnel, ProxyTimers } from './proxy.ts';
export { parseAllowList } from './allow-list.ts';
export { PROXY_REFUSALS } from './proxy-refusals.ts';
export type { ProxyRefusal } from './proxy-refusals.ts';
export type { TunnelStats } from './ledger.ts';
export type { TunnelHandle } from './shared.ts';
export { DEFAULT_SHUTDOWN_GRACE_MS } from './shared.ts';
export { TunnelError } from './errors.ts';
export { DEFAULT_TUNNEL_KEEPALIVE_MS } from './splice.ts';
export type { SpliceOptions } from './splice.ts';
export type { TunnelErrorCode } from './errors.ts';
export { probeTarget, DEFAULT_PROBE_CONNECT_TIMEOUT_MS } from './probe.ts';
export { forwardUdp, udpStats } from './udp-forward.ts';
export type { UdpForwardOptions, UdpTunnel } from './udp-forward.ts';
export { exposeUdp } from './udp-expose.ts';
export type { UdpExposeOptions, UdpExposeTunnel } from './udp-expose.ts';
export { DEFAULT_UDP_FLOW_IDLE_MS, DEFAULT_UDP_MAX_FLOWS, UDP_FLOW_PENDING_DATAGRAMS } from './udp-flows.ts';
export type { UdpTunnelCounts } from './udp-flows.ts';
