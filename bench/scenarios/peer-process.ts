/**
 * The far end of a virtual connection in a process of its own (bench/load/peer.ts), for the lines
 * that compare end-to-end encryption with plaintext the way users run it: each host encrypts or
 * decrypts its own direction on its own CPU. The bench process holds the other end.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, generateIdentity, type Client, type VirtualConnection } from '../../actors/client/index.ts';
import { ServerChild } from '../lib/child.ts';
import { BenchIntegrityError, type TransferResult } from '../load/drive.ts';
import { cliShippedNodeFlags } from '../load/transports.ts';
import type { BenchContext } from './context.ts';

/** A peer process, the virtual address it listens on, and how to stop it. */
export interface Peer {
  child: ServerChild;
  /** Its virtual IP and port (what the child printed as `listening on`). */
  target: { address: string; port: number };
  stop(): Promise<void>;
}

/**
 * Starts bench/load/peer.ts as a library client of `relay` from `localAddress`, listening on virtual
 * `port` in `mode`. It runs with the flags the CLI ships with, and the bench's extra ones (the
 * same for the plaintext and the e2e peer, so they are compared alike).
 */
export async function startPeer(
  context: BenchContext,
  relay: { host: string; port: number },
  options: { name: string; localAddress: string; port: number; mode: 'sink' | 'accept'; e2e: boolean },
): Promise<Peer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-peer-'));
  const patternFile = path.join(dir, 'pattern');
  await writeFile(patternFile, context.pattern);
  const args = ['bench/load/peer.ts', '--relay', `${relay.host}:${relay.port}`, '--local-address', options.localAddress, '--port', String(options.port), '--mode', options.mode, '--pattern', patternFile];
  let child: ServerChild;
  try {
    child = await ServerChild.start({
      name: options.name,
      args: options.e2e ? [...args, '--e2e'] : args,
      nodeFlags: [...cliShippedNodeFlags(), ...(context.relay.nodeFlags ?? [])],
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    child,
    target: { address: child.host, port: child.port },
    async stop() {
      try {
        await child.stop();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A library client in the bench process, plaintext or e2e like the peer it talks to. */
export function benchClient(relay: { host: string; port: number }, localAddress: string, e2e: boolean): Promise<Client> {
  return connect({ host: relay.host, port: relay.port, localAddress, ...(e2e ? { identity: generateIdentity(), e2e: true } : { identity: false }) });
}

/** Reads `conn` to its end as text. */
async function reply(conn: VirtualConnection): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of conn) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

/**
 * One timed transfer to a sink peer: `bytes` of the pattern by send() in `writeBytes` calls over a
 * fresh connection, then end(); done when the peer, having checked every byte, answers `ok <bytes>`.
 */
export async function sendToSink(client: Client, peer: Peer, pattern: Buffer, bytes: number, writeBytes: number): Promise<TransferResult> {
  const conn = await client.connect(peer.target);
  const start = process.hrtime.bigint();
  try {
    const answer = reply(conn);
    // Awaited below; if sending fails first, its rejection is that failure's echo, not unhandled.
    answer.catch(() => {});
    for (let sent = 0; sent < bytes; sent += writeBytes) {
      const at = sent % pattern.length;
      await conn.send(pattern.subarray(at, at + writeBytes));
    }
    await conn.end();
    const said = await answer;
    if (said !== `ok ${bytes}`) throw new BenchIntegrityError('ERR_BENCH_CORRUPT', `the peer process received ${bytes} bytes and said "${said}"`);
  } finally {
    conn.close();
  }
  return { bytes, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}
