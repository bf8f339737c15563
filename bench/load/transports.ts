/**
 * The three ways a benchmark moves bytes between two endpoints in this process, so every
 * scenario runs the same load over each and compares in the same run (issue 6):
 * direct loopback TCP, a plain Node `pipe()` proxy in its own process, and the AlphaNET relay in
 * its own process with raw protocol clients at both ends.
 */
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ServerChild } from '../lib/child.ts';
import { sourceAddress } from '../lib/addresses.ts';
import { RawClient, type VirtualConnection } from './raw-client.ts';

/** Loopback address every server listens on. */
export const SERVER_HOST = '127.0.0.1';
/** Virtual port the relay-side listeners bind. */
export const LISTEN_PORT = 7000;
/** Connects in flight at once while setting up flows, below the listen backlog. */
export const SETUP_CONCURRENCY = 64;

/** One end of a byte stream, whatever carries it. */
export interface StreamEnd {
  /** Queues bytes; false means wait for the drain handler before writing more. */
  write(chunk: Buffer): boolean;
  setOnDrain(handler: () => void): void;
  setOnData(handler: (chunk: Buffer) => void): void;
  /** Stops reading from the network (a frozen receiver): nothing is consumed or acknowledged. */
  freeze(): void;
  close(): void;
}

/** A flow: bytes written at `a` arrive at `b` and the other way. */
export interface Pair {
  a: StreamEnd;
  b: StreamEnd;
}

export type TransportKind = 'direct' | 'proxy' | 'relay';

/** Something that can make flows, and tells the memory of the process in the middle. */
export interface Transport {
  readonly kind: TransportKind;
  /** Opens `count` flows, the n-th from source address `sourceAddress(block, firstAddress + 2n)`. */
  openPairs(count: number, block: number, firstAddress?: number): Promise<Pair[]>;
  /** Closes the connections under these pairs, so a shared transport starts the next scenario clean. */
  releasePairs(pairs: Pair[]): Promise<void>;
  /** RSS of the process in the middle (undefined for direct TCP). */
  middleRss(): Promise<number | undefined>;
  /** CPU seconds the process in the middle has used so far (undefined for direct TCP). */
  middleCpuSeconds(): Promise<number | undefined>;
  close(): Promise<void>;
}

/** A TCP socket as a StreamEnd. */
export class TcpEnd implements StreamEnd {
  constructor(readonly socket: net.Socket) {
    socket.on('error', () => socket.destroy());
  }
  write(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }
  setOnDrain(handler: () => void): void {
    this.socket.removeAllListeners('drain').on('drain', handler);
  }
  setOnData(handler: (chunk: Buffer) => void): void {
    this.socket.removeAllListeners('data').on('data', handler);
  }
  freeze(): void {
    this.socket.pause();
  }
  close(): void {
    this.socket.destroy();
  }
}

/** A virtual socket connection as a StreamEnd. */
export class VirtualEnd implements StreamEnd {
  constructor(
    readonly connection: VirtualConnection,
    readonly client: RawClient,
  ) {}
  write(chunk: Buffer): boolean {
    return this.connection.write(chunk);
  }
  setOnDrain(handler: () => void): void {
    this.connection.onDrain = handler;
  }
  setOnData(handler: (chunk: Buffer) => void): void {
    this.connection.onData = handler;
  }
  freeze(): void {
    // The destination stops reading TCP altogether, the hardest case for the relay (§7).
    this.connection.autoGrant = false;
    this.client.socket.pause();
  }
  close(): void {
    this.connection.close();
  }
}

/** A TCP server in this process that hands accepted sockets to whoever waits next (the sink of the user-path tests too). */
export class AcceptQueue {
  readonly server: net.Server;
  readonly #waiting: ((socket: net.Socket) => void)[] = [];
  readonly #ready: net.Socket[] = [];
  readonly sockets = new Set<net.Socket>();

  constructor() {
    this.server = net.createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const waiter = this.#waiting.shift();
      if (waiter) waiter(socket);
      else this.#ready.push(socket);
    });
  }
  async listen(): Promise<number> {
    this.server.listen({ host: SERVER_HOST, port: 0, backlog: 4096 });
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }
  next(): Promise<net.Socket> {
    // A connection that ended before it was taken, empty, is no flow: `alphanet expose` probes
    // its target at start with one (connect, FIN). Nothing reads a queued socket, so its 'end'
    // has not been emitted; the stream state says whether its FIN has arrived.
    let ready = this.#ready.shift();
    while (ready && (ready.destroyed || (ready as unknown as { _readableState: { ended: boolean } })._readableState.ended) && ready.readableLength === 0) {
      ready.destroy();
      ready = this.#ready.shift();
    }
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function connectTcp(host: string, port: number, localAddress: string): Promise<net.Socket> {
  const socket = net.connect({ host, port, localAddress, noDelay: true });
  await once(socket, 'connect');
  return socket;
}

/** Direct loopback TCP (no middle process), or through the plain pipe() proxy. */
export class TcpTransport implements Transport {
  readonly kind: TransportKind;
  readonly #accept: AcceptQueue;
  readonly #proxy: ServerChild | undefined;
  readonly #port: number;
  readonly #clients = new Set<net.Socket>();

  private constructor(kind: TransportKind, accept: AcceptQueue, port: number, proxy: ServerChild | undefined) {
    this.kind = kind;
    this.#accept = accept;
    this.#port = port;
    this.#proxy = proxy;
  }

  static async start(kind: 'direct' | 'proxy', nodeFlags: string[] = []): Promise<TcpTransport> {
    const accept = new AcceptQueue();
    const serverPort = await accept.listen();
    if (kind === 'direct') return new TcpTransport(kind, accept, serverPort, undefined);
    const proxy = await startProxy(`${SERVER_HOST}:${serverPort}`, nodeFlags);
    return new TcpTransport(kind, accept, proxy.port, proxy);
  }

  async openPairs(count: number, block: number, firstAddress = 0): Promise<Pair[]> {
    const pairs: Pair[] = [];
    // One at a time, so the n-th accepted socket belongs to the n-th connect.
    for (let i = 0; i < count; i++) {
      const accepted = this.#accept.next();
      const client = await connectTcp(SERVER_HOST, this.#port, sourceAddress(block, firstAddress + 2 * i));
      this.#clients.add(client);
      pairs.push({ a: new TcpEnd(client), b: new TcpEnd(await accepted) });
    }
    return pairs;
  }

  async releasePairs(pairs: Pair[]): Promise<void> {
    for (const pair of pairs) {
      const client = (pair.a as TcpEnd).socket;
      this.#clients.delete(client);
      client.destroy();
      (pair.b as TcpEnd).socket.destroy();
    }
  }

  async middleRss(): Promise<number | undefined> {
    return this.#proxy?.rssBytes();
  }

  async middleCpuSeconds(): Promise<number | undefined> {
    return this.#proxy?.cpuSeconds();
  }

  /** Process id of the proxy (undefined for direct TCP). */
  get middlePid(): number | undefined {
    return this.#proxy?.pid;
  }

  async close(): Promise<void> {
    for (const client of this.#clients) client.destroy();
    await this.#accept.close();
    await this.#proxy?.stop();
  }
}

/** Spawns the baseline proxy (or, without target, the plain echo server). */
export function startProxy(target?: string, nodeFlags: string[] = []): Promise<ServerChild> {
  return ServerChild.start({
    name: target ? 'pipe proxy' : 'plain TCP server',
    args: ['bench/baseline/proxy-main.ts', '--host', SERVER_HOST, '--port', '0', ...(target ? ['--target', target] : [])],
    nodeFlags,
  });
}

export interface RelayStartOptions {
  /** Existing store file to start on; a fresh temp file when omitted. */
  dbFile?: string;
  /** Extra relay flags (limits, timeouts; docs/RELAY.md). @default [] */
  extraArgs?: string[];
  /** Node flags for the relay process, e.g. --cpu-prof. @default [] */
  nodeFlags?: string[];
  /** Environment for the relay process. @default {} */
  env?: Record<string, string>;
  /**
   * Serve TLS (the CLI's default, with a key made in the store's directory). The bench's relay is
   * plain TCP otherwise: its raw clients speak the protocol unwrapped, and its figures stay
   * comparable with the runs before TLS; the tunnel bulk test measures TLS beside it.
   * @default false
   */
  tls?: boolean;
}


/**
 * The node flags the relay ships with: those of package.json's `npm start` script (between
 * `node` and `--import`), so the bench measures the relay as users run it.
 * `--initial-old-space-size=64` keeps V8 from a mark-compact every few MB relayed
 * (docs/BENCHMARKS.md, "What was slow").
 */
export function relayShippedNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts?: { start?: string } };
  const words = (pkg.scripts?.start ?? '').split(/\s+/);
  const end = words.indexOf('--import');
  return words[0] === 'node' && end > 0 ? words.slice(1, end) : [];
}

/**
 * The node flags `alphanet` (bin/alphanet.js) runs with: those of its `#!/usr/bin/env -S node …`
 * line, so tunnel processes, and the proxies they are compared with, run as users run them.
 */
export function cliShippedNodeFlags(): string[] {
  const first = readFileSync(new URL('../../bin/alphanet.js', import.meta.url), 'utf8').split('\n')[0];
  const words = first.replace(/^#!\S*env\s+(-S\s+)?/, '').split(/\s+/).filter(Boolean);
  return words[0] === 'node' ? words.slice(1) : [];
}

/** A relay process on a temp store, removed again by stop(). */
export class RelayProcess {
  private constructor(
    readonly child: ServerChild,
    readonly dir: string | undefined,
  ) {}

  static async start(options: RelayStartOptions = {}): Promise<RelayProcess> {
    const dir = options.dbFile ? undefined : await mkdtemp(path.join(tmpdir(), 'alphanet-bench-'));
    const db = options.dbFile ?? path.join(dir!, 'db.json');
    try {
      const child = await ServerChild.start({
        name: 'relay',
        args: ['cli/relay-main.ts', ...(options.tls ? [] : ['--plaintext']), '--host', SERVER_HOST, '--port', '0', '--db', db, ...(options.extraArgs ?? [])],
        nodeFlags: [...relayShippedNodeFlags(), ...(options.nodeFlags ?? [])],
        env: options.env,
      });
      return new RelayProcess(child, dir);
    } catch (error) {
      if (dir) await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  get host(): string {
    return this.child.host;
  }
  get port(): number {
    return this.child.port;
  }

  connect(localAddress: string, accept = true): Promise<RawClient> {
    return RawClient.connect({ host: this.child.host, port: this.child.port, localAddress, accept });
  }

  async stop(): Promise<void> {
    await this.child.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** Flows through the relay: each end is its own client connection from its own real IP. */
export class RelayTransport implements Transport {
  readonly kind = 'relay' as const;
  readonly relay: RelayProcess;
  readonly clients = new Set<RawClient>();

  private constructor(relay: RelayProcess) {
    this.relay = relay;
  }

  static async start(options: RelayStartOptions = {}): Promise<RelayTransport> {
    return new RelayTransport(await RelayProcess.start(options));
  }

  async openPairs(count: number, block: number, firstAddress = 0): Promise<Pair[]> {
    const pairs: Pair[] = new Array(count);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const listener = await this.relay.connect(sourceAddress(block, firstAddress + 2 * i + 1));
        const connector = await this.relay.connect(sourceAddress(block, firstAddress + 2 * i));
        this.clients.add(listener).add(connector);
        await listener.listen(LISTEN_PORT);
        const sourcePort = await connector.bind(0);
        const accepted = new Promise<VirtualConnection>((resolve) => listener.once('connection', resolve));
        const a = await connector.open(sourcePort, { ip: listener.virtualIp, port: LISTEN_PORT });
        const b = await accepted;
        pairs[i] = { a: new VirtualEnd(a, connector), b: new VirtualEnd(b, listener) };
      }
    };
    await Promise.all(Array.from({ length: Math.min(SETUP_CONCURRENCY, count) }, worker));
    return pairs;
  }

  async releasePairs(pairs: Pair[]): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const pair of pairs) {
      for (const end of [pair.a, pair.b] as VirtualEnd[]) {
        this.clients.delete(end.client);
        end.client.close();
        closing.push(end.client.closedPromise());
      }
    }
    await Promise.all(closing);
  }

  async middleRss(): Promise<number | undefined> {
    return this.relay.child.rssBytes();
  }

  async middleCpuSeconds(): Promise<number | undefined> {
    return this.relay.child.cpuSeconds();
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.close();
    await this.relay.stop();
  }
}

/** Starts the transport of `kind`. */
export function startTransport(kind: TransportKind, relayOptions: RelayStartOptions = {}): Promise<Transport> {
  // Node flags (e.g. --cpu-prof) go to the proxy too, so profiles can be compared side by side.
  return kind === 'relay' ? RelayTransport.start(relayOptions) : TcpTransport.start(kind, relayOptions.nodeFlags);
}
