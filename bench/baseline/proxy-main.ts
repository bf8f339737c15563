/**
 * The baseline the relay is measured against (issue 6): a plain Node TCP proxy that pipes each
 * accepted connection to a target with `pipe()`, in its own process like the relay.
 * Without --target it is a plain TCP server that echoes what it reads, the floor a Node server
 * pays per idle socket.
 *
 *   node --import tsx bench/baseline/proxy-main.ts --host 127.0.0.1 --port 0 [--target H:P]
 */
import net from 'node:net';
import { Command } from 'commander';

const program = new Command()
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0 = any free port)', '0')
  .option('--target <host:port>', 'pipe every connection to this address; without it, echo')
  .option('--backlog <n>', 'listen backlog', '4096')
  .parse();
const options = program.opts<{ host: string; port: string; target?: string; backlog: string }>();

const target = options.target === undefined ? undefined : parseTarget(options.target);

const server = net.createServer({ noDelay: true }, (client) => {
  client.on('error', () => client.destroy());
  if (target === undefined) {
    client.pipe(client);
    return;
  }
  const upstream = net.connect({ host: target.host, port: target.port, noDelay: true });
  upstream.on('error', () => {
    upstream.destroy();
    client.destroy();
  });
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
});

server.listen({ host: options.host, port: Number(options.port), backlog: Number(options.backlog) }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
});

const stop = (): void => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

function parseTarget(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}
