/**
 * A nats-server with JetStream for the cluster specs: its own temp store directory, a free
 * loopback port chosen by the server (`-p -1`, read back from its log), stopped at teardown.
 * Fails clearly when the binary is missing (`.ci/install-nats.sh` installs Debian's).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';

/** How long the server may take to say it listens. */
const NATS_START_MS = 15_000;

/** Where Debian installs it; `NATS_SERVER` overrides. */
export const NATS_SERVER_BINARY = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';

export interface NatsServer {
  /** `nats://127.0.0.1:PORT` */
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything it logged so far. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its store directory. */
  stop(): Promise<void>;
}

/** The part of a tap test the helper needs. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Starts nats-server -js on 127.0.0.1 and stops it when `t` ends (without `t`: call stop()). */
export async function startNatsServer(t?: Teardown): Promise<NatsServer> {
  const binary = NATS_SERVER_BINARY;
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: the cluster specs need Debian's nats-server (run .ci/install-nats.sh, or set NATS_SERVER to its path)`);
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-nats-'));
  const child = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', '-1', '-sd', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const onData = (d: Buffer) => (log += d.toString('utf8'));
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })());
  t?.teardown(stop);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not say it listens within ${NATS_START_MS} ms; its log:\n${log}`)), NATS_START_MS);
    const check = () => {
      const m = /Listening for client connections on [^\s]+:(\d+)/.exec(log);
      if (m && /Server is ready/.test(log)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${binary}: ${error.message}`));
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited before it was ready; its log:\n${log}`));
    });
  });
  return { url: `nats://127.0.0.1:${port}`, port, child, log: () => log, stop };
}

/**
 * A maker of NATS client connections to `url`, each its own (as each relay has), all closed when
 * `t` ends: for specs that stand several stores or relays on one server.
 */
export function natsConnections(t: Teardown, url: string): () => Promise<NatsConnection> {
  const connections: NatsConnection[] = [];
  t.teardown(async () => {
    for (const nc of connections) await nc.close();
  });
  return async () => {
    const nc = await connect({ servers: url });
    connections.push(nc);
    return nc;
  };
}
