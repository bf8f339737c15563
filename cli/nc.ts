/**
 * `alphanet nc`: netcat over virtual sockets. stdin goes to the connection, the connection to
 * stdout; stdin's end half-closes, and the command exits when both directions are done. stdout
 * carries only data; what nc says (listening on, progress, the summary) goes to stderr.
 */
import { once } from 'node:events';
import { Command, InvalidArgumentError } from 'commander';
import { connect } from '../actors/client/index.ts';
import type { VirtualConnection } from '../actors/client/index.ts';
import { addClientOptions, connectOptionsFrom, exitAfterStdout, fail } from './client-options.ts';
import type { ClientFlags } from './client-options.ts';
import { TransferMeter } from './transfer-meter.ts';

interface NcFlags extends ClientFlags {
  listen?: boolean;
  keepOpen?: boolean;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`"${text}" is not a port 1..65535`);
  return port;
}

/** Copies the connection to stdout, with stdout's backpressure, until the peer ends. */
async function download(conn: VirtualConnection, meter: TransferMeter): Promise<void> {
  for await (const chunk of conn) {
    meter.received += chunk.byteLength;
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
  }
}

/** Copies stdin to the connection (each send awaits the window), then half-closes. */
async function upload(conn: VirtualConnection, input: AsyncIterable<Uint8Array> | undefined, meter: TransferMeter): Promise<void> {
  if (input) {
    for await (const chunk of input) {
      await conn.send(chunk);
      meter.sent += chunk.byteLength;
    }
  }
  if (!conn.closed) await conn.end();
}

/** Both directions of one connection, then its summary line on stderr (also when it failed). */
async function pump(conn: VirtualConnection, input: AsyncIterable<Uint8Array> | undefined): Promise<void> {
  const meter = new TransferMeter(process.stderr).start();
  try {
    await Promise.all([upload(conn, input, meter), download(conn, meter)]);
  } finally {
    meter.finish();
  }
}

export function buildNcCommand(): Command {
  return addClientOptions(new Command('nc'))
    .description('connect stdin/stdout to a virtual socket: `nc ADDRESS PORT` connects, `nc -l PORT` listens')
    .argument('[address]', 'virtual IP to connect to (or, with -l, the port to listen on)')
    .argument('[port]', 'virtual port to connect to')
    .option('-l, --listen', 'listen on PORT and accept a connection')
    .option('-k, --keep-open', 'with -l: keep accepting connections one after another')
    .action(async (address: string | undefined, port: string | undefined, flags: NcFlags, command: Command) => {
      if (flags.listen ? address === undefined || port !== undefined : address === undefined || port === undefined) {
        command.error(flags.listen ? 'usage: alphanet nc -l PORT' : 'usage: alphanet nc ADDRESS PORT');
      }
      try {
        const client = await connect(connectOptionsFrom(flags));
        if (flags.listen) {
          const server = await client.listen(parsePort(address as string));
          // Said once bound: a peer may connect from now on.
          process.stderr.write(`listening on ${client.virtualIp}:${server.port}\n`);
          // stdin can be read once: the first connection gets it, later ones (-k) only an end.
          let input: AsyncIterable<Uint8Array> | undefined = process.stdin;
          do {
            const conn = await server.accept();
            await pump(conn, input);
            input = undefined;
          } while (flags.keepOpen);
        } else {
          const conn = await client.connect({ address: address as string, port: parsePort(port as string) });
          await pump(conn, process.stdin);
        }
        await client.close();
        exitAfterStdout(0);
      } catch (error) {
        fail(error);
      }
    });
}
