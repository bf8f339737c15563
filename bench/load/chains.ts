/**
 * The paths a user's TCP bytes take in the user-path tests (issue 10), each as a chain of server
 * processes between a TCP source and a TCP sink in the bench process: three plain Node pipe()
 * proxies, three socat proxies, an AlphaNET tunnel (`alphanet forward` → relay → `alphanet
 * expose`, each its own process, as the CLI runs them), and the delay-and-rate link.
 */
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { ServerChild } from '../lib/child.ts';
import { SERVER_HOST, TcpEnd, type AcceptQueue, type Pair } from './transports.ts';

/** A host and port. */
export interface Endpoint {
  host: string;
  port: number;
}

/** Server processes in a row; TCP sources connect to `entry`. */
export interface Chain {
  /** For progress lines and rows, e.g. "node×3". */
  readonly name: string;
  readonly entry: Endpoint;
  /** Every process of the chain, named for the CPU figures. */
  readonly processes: ReadonlyArray<{ name: string; child: ServerChild }>;
  close(): Promise<void>;
}

/** Hops in a proxy chain: forward, relay and expose are three processes too (issue 10). */
export const CHAIN_HOPS = 3;
/** Virtual port the tunnel's expose process listens on. */
export const TUNNEL_VIRTUAL_PORT = 80;

async function closeAll(children: ServerChild[]): Promise<void> {
  await Promise.all(children.map((c) => c.stop()));
}

/** Starts children one by one (each needs the next one's port); stops those started if one fails. */
async function inOrder(build: Array<(next: Endpoint) => Promise<ServerChild>>, target: Endpoint): Promise<ServerChild[]> {
  const started: ServerChild[] = [];
  let next = target;
  try {
    for (const start of build) {
      const child = await start(next);
      started.unshift(child);
      next = { host: child.host, port: child.port };
    }
  } catch (error) {
    await closeAll(started);
    throw error;
  }
  return started;
}

function chainOf(name: string, children: ServerChild[], label: (i: number) => string): Chain {
  return {
    name,
    entry: { host: children[0].host, port: children[0].port },
    processes: children.map((child, i) => ({ name: label(i), child })),
    close: () => closeAll(children),
  };
}

/** Three bench/baseline/proxy-main.ts processes, each piping to the next, the last to `target`. */
export async function startNodeChain(target: Endpoint, nodeFlags: string[]): Promise<Chain> {
  const proxy = (next: Endpoint): Promise<ServerChild> =>
    ServerChild.start({
      name: 'pipe proxy',
      args: ['bench/baseline/proxy-main.ts', '--host', SERVER_HOST, '--port', '0', '--target', `${next.host}:${next.port}`],
      nodeFlags,
    });
  const children = await inOrder(Array.from({ length: CHAIN_HOPS }, () => proxy), target);
  return chainOf(`node×${CHAIN_HOPS}`, children, (i) => `proxy ${i + 1}`);
}

/** True when a socat binary is on PATH. */
export function socatInstalled(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Three socat processes (`fork`: one child process per connection, counted in their CPU). */
export async function startSocatChain(target: Endpoint): Promise<Chain> {
  const proxy = (next: Endpoint): Promise<ServerChild> =>
    ServerChild.start({
      name: 'socat',
      args: [],
      command: ['socat', '-d', '-d', `TCP-LISTEN:0,bind=${SERVER_HOST},fork,reuseaddr,nodelay,backlog=1024`, `TCP:${next.host}:${next.port},nodelay`],
      ready: /listening on AF=2 (\S+):(\d+)/,
      countChildren: true,
    });
  const children = await inOrder(Array.from({ length: CHAIN_HOPS }, () => proxy), target);
  return chainOf(`socat×${CHAIN_HOPS}`, children, (i) => `socat ${i + 1}`);
}

export interface TunnelChainOptions {
  /** The relay both tunnel ends connect to. */
  relay: Endpoint;
  /** Real source addresses of the expose and forward processes (they decide the virtual IPs). */
  exposeAddress: string;
  forwardAddress: string;
  nodeFlags: string[];
  /**
   * TLS to the relay, the client commands' default, with the known-relays file in this directory;
   * undefined for `--plaintext`, as the bench's plain relay serves. @default undefined
   */
  tlsConfigDir?: string;
  /** The chain's name in rows and progress lines. @default 'tunnel' */
  name?: string;
  /**
   * End-to-end encryption between the two tunnel ends (the CLI's default), each with an identity
   * and pins of its own under this directory; undefined for `--no-e2e`. @default undefined
   */
  e2eDir?: string;
}

/**
 * `alphanet expose 80 target` and `alphanet forward 0 VIP:80` as processes: TCP into the
 * forward's port comes out of the expose process into `target`.
 */
export async function startTunnelChain(target: Endpoint, options: TunnelChainOptions): Promise<Chain> {
  const relay = `${options.relay.host}:${options.relay.port}`;
  const transport = options.tlsConfigDir === undefined ? ['--plaintext'] : [];
  const env: Record<string, string> = options.tlsConfigDir === undefined ? {} : { ALPHANET_CONFIG_DIR: options.tlsConfigDir };
  const e2e = (end: string): string[] => (options.e2eDir === undefined ? ['--no-e2e'] : ['--identity', path.join(options.e2eDir, end, 'identity')]);
  const expose = await ServerChild.start({
    name: 'alphanet expose',
    args: ['cli/alphanet.ts', 'expose', String(TUNNEL_VIRTUAL_PORT), `${target.host}:${target.port}`, '--relay', relay, '--local-address', options.exposeAddress, ...e2e('expose'), ...transport],
    env,
    nodeFlags: options.nodeFlags,
    ready: /exposing (\S+):(\d+) ->/,
  });
  let forward: ServerChild;
  try {
    forward = await ServerChild.start({
      name: 'alphanet forward',
      args: ['cli/alphanet.ts', 'forward', '0', `${expose.host}:${expose.port}`, '--relay', relay, '--local-address', options.forwardAddress, ...e2e('forward'), ...transport],
      env,
      nodeFlags: options.nodeFlags,
      ready: /forwarding (\S+):(\d+) ->/,
    });
  } catch (error) {
    await expose.stop();
    throw error;
  }
  return {
    name: options.name ?? 'tunnel',
    entry: { host: forward.host, port: forward.port },
    processes: [
      { name: 'forward', child: forward },
      { name: 'expose', child: expose },
    ],
    close: () => closeAll([forward, expose]),
  };
}

export interface LinkOptions {
  delayMs: number;
  rateMBps: number;
  nodeFlags: string[];
}

/** One bench/baseline/link-main.ts process in front of `target`. */
export function startLink(target: Endpoint, options: LinkOptions): Promise<ServerChild> {
  return ServerChild.start({
    name: 'link',
    args: [
      'bench/baseline/link-main.ts',
      '--host', SERVER_HOST,
      '--port', '0',
      '--target', `${target.host}:${target.port}`,
      '--delay-ms', String(options.delayMs),
      '--rate-mbps', String(options.rateMBps),
    ],
    nodeFlags: options.nodeFlags,
  });
}

/**
 * Opens `count` TCP flows from `entry` to the sink, one at a time so the n-th accepted socket
 * belongs to the n-th connect, from `localAddress`.
 */
export async function openTcpFlows(entry: Endpoint, sink: AcceptQueue, count: number, localAddress: string): Promise<Pair[]> {
  const pairs: Pair[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const accepted = sink.next();
      const socket = net.connect({ host: entry.host, port: entry.port, localAddress, noDelay: true });
      await once(socket, 'connect');
      pairs.push({ a: new TcpEnd(socket), b: new TcpEnd(await accepted) });
    }
  } catch (error) {
    closeFlows(pairs);
    throw error;
  }
  return pairs;
}

/** Destroys both sockets of every flow. */
export function closeFlows(pairs: Pair[]): void {
  for (const pair of pairs) {
    pair.a.close();
    pair.b.close();
  }
}
