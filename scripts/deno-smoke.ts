/**
 * The Deno smoke: two clients (from 127.0.0.2 and 127.0.0.3) open a virtual connection through
 * a relay and move bytes both ways, checked by SHA-256 and length. It runs the same sources as
 * Node does; CI runs it under Deno (specs/package/deno.spec.ts), against a relay that Deno also
 * runs (`deno run … cli/alphanet.ts relay`).
 *
 *   npx deno run --allow-net --allow-read --allow-env --allow-sys scripts/deno-smoke.ts [--relay HOST:PORT] [--bytes N]
 *
 * Without --relay it starts a relay in-process on a free port. Prints one JSON line with what it
 * checked and exits 0; on any mismatch or error it prints the reason to stderr and exits 1.
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect, openMemoryAddressStore, parseRelayAddress, startRelay, type VirtualConnection } from '../index.ts';

const DEFAULT_BYTES = 2 * 1024 * 1024;
/** Every wait below is bounded: a hung runtime fails the smoke instead of stalling CI. */
const DEADLINE_MS = 30_000;

/** Deterministic bytes that differ per direction, so a crossed stream cannot pass. */
function pattern(seed: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Sends `bytes` in 64 KiB pieces, then half-closes. */
async function sendAll(conn: VirtualConnection, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length; at += 65_536) await conn.send(bytes.subarray(at, at + 65_536));
  await conn.end();
}

/** Everything the peer sends until it half-closes. */
async function readAll(conn: VirtualConnection): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of conn) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function smoke(relayAddress: string | undefined, size: number): Promise<Record<string, unknown>> {
  const store = relayAddress === undefined ? await openMemoryAddressStore({ subnet: '10.0.0.0/16' }) : undefined;
  const relay = store ? await startRelay({ store, host: '127.0.0.1', port: 0 }) : undefined;
  const target = relay ? { host: relay.host, port: relay.port } : parseRelayAddress(relayAddress as string);
  const server = await connect({ ...target, localAddress: '127.0.0.2' });
  const client = await connect({ ...target, localAddress: '127.0.0.3' });
  try {
    const up = pattern(1, size);
    const down = pattern(2, size);
    const listener = await server.listen(7);
    const served = (async () => {
      const conn = await listener.accept();
      const [received] = await Promise.all([readAll(conn), sendAll(conn, down)]);
      return { received, remoteAddress: conn.remoteAddress };
    })();
    const conn = await client.connect({ address: server.virtualIp, port: 7 });
    const [received] = await Promise.all([readAll(conn), sendAll(conn, up)]);
    const atServer = await served;
    const problems: string[] = [];
    if (sha256(atServer.received) !== sha256(up)) problems.push(`client→server: ${atServer.received.length} of ${size} bytes, contents differ`);
    if (sha256(received) !== sha256(down)) problems.push(`server→client: ${received.length} of ${size} bytes, contents differ`);
    if (atServer.remoteAddress !== client.virtualIp) problems.push(`server saw ${atServer.remoteAddress}, client is ${client.virtualIp}`);
    if (server.virtualIp === client.virtualIp) problems.push(`both clients got ${client.virtualIp}`);
    if (problems.length > 0) throw new Error(problems.join('; '));
    return {
      runtime: 'Deno' in globalThis ? 'deno' : 'node',
      relay: relay ? 'in-process' : relayAddress,
      server: server.virtualIp,
      client: client.virtualIp,
      bytesEachWay: size,
      sha256Up: sha256(up),
      sha256Down: sha256(down),
    };
  } finally {
    await client.close();
    await server.close();
    await relay?.close();
    await store?.close();
  }
}

const { values } = parseArgs({ options: { relay: { type: 'string' }, bytes: { type: 'string' } } });
const size = values.bytes === undefined ? DEFAULT_BYTES : Number(values.bytes);
if (!Number.isInteger(size) || size < 1) {
  process.stderr.write(`deno-smoke: --bytes must be a positive integer, got ${values.bytes}\n`);
  process.exit(1);
}
let timer: ReturnType<typeof setTimeout> | undefined;
const deadline = new Promise<never>((_, reject) => {
  timer = setTimeout(() => reject(new Error(`not done within ${DEADLINE_MS} ms`)), DEADLINE_MS);
});
try {
  const result = await Promise.race([smoke(values.relay, size), deadline]);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  clearTimeout(timer);
} catch (error) {
  process.stderr.write(`deno-smoke: ${(error as Error).message}\n`);
  process.exit(1);
}
