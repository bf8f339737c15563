/**
 * One library client in a process of its own: the far end of a virtual connection, as a user's
 * peer runs on another host. The bench process connects to it through the relay, so each end's
 * work (and its encryption, with --e2e) is done by its own process, as in use; the bench reads
 * this process's CPU from /proc like any server child's.
 *
 *   node --import tsx bench/load/peer.ts --relay H:P --local-address A --port N --mode sink|accept
 *     [--e2e] [--pattern FILE]
 *
 * Prints `listening on <virtual IP>:<port>` once it listens. Modes:
 * - sink: reads each accepted connection to its end, checks every byte against the pattern (the
 *   bench's, from FILE) from offset 0, then answers `ok <bytes>` (or `corrupt at <offset>`) and
 *   ends its side.
 * - accept: closes each accepted connection at once (the connector sees the close).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect, generateIdentity, type VirtualConnection } from '../../actors/client/index.ts';
import { matchesPattern } from './drive.ts';

const { values } = parseArgs({
  options: {
    relay: { type: 'string' },
    'local-address': { type: 'string' },
    port: { type: 'string' },
    mode: { type: 'string' },
    e2e: { type: 'boolean', default: false },
    pattern: { type: 'string' },
  },
});

function fail(message: string): never {
  process.stderr.write(`peer: ${message}\n`);
  process.exit(2);
}

const [host, portText] = (values.relay ?? fail('--relay H:P is required')).split(/:(?=\d+$)/);
const port = Number(values.port ?? fail('--port is required'));
const mode = values.mode;
if (mode !== 'sink' && mode !== 'accept') fail(`--mode must be sink or accept, not ${mode}`);
const pattern = mode === 'sink' ? readFileSync(values.pattern ?? fail('--pattern FILE is required for sink')) : undefined;

/** Reads `conn` to its end against the pattern; answers with what it found and ends. */
async function sink(conn: VirtualConnection): Promise<void> {
  let position = 0;
  let verdict: string | undefined;
  for await (const chunk of conn) {
    if (verdict !== undefined) continue;
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!matchesPattern(pattern!, view, position)) verdict = `corrupt at ${position}`;
    position += chunk.byteLength;
  }
  await conn.send(Buffer.from(verdict ?? `ok ${position}`));
  await conn.end();
}

const client = await connect({
  host,
  port: Number(portText),
  localAddress: values['local-address'],
  ...(values.e2e ? { identity: generateIdentity(), e2e: true } : { identity: false }),
});
const listener = await client.listen(port);
process.once('SIGTERM', () => {
  void client.close().finally(() => process.exit(0));
});
process.stdout.write(`listening on ${client.virtualIp}:${port}\n`);
for (;;) {
  const conn = await listener.accept();
  if (mode === 'accept') conn.close();
  else
    sink(conn).catch((error: unknown) => {
      process.stderr.write(`peer: ${(error as Error).message}\n`);
      // An abort, not a clean close: the sender fails with the connection's error.
      conn.destroy();
    });
}
