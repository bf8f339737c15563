/**
 * A long link in userspace (the kernel here has no netem): a TCP proxy that holds every chunk
 * for a fixed delay and lets each direction of each connection through at a fixed rate, like a
 * far-away path with a bounded queue. The bench puts one between each client and the relay
 * (issue 10) and the same one around the raw-TCP baseline, so both cross the same link.
 *
 *   node --import tsx bench/baseline/link-main.ts --target H:P [--delay-ms 25] [--rate-mbps 100]
 *
 * The outgoing connection is made from the incoming one's source address, so a relay behind the
 * link still tells its clients apart by real IP (all on 127.0.0.0/8).
 */
import net from 'node:net';
import { Command } from 'commander';

const program = new Command()
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0 = any free port)', '0')
  .requiredOption('--target <host:port>', 'where every connection is carried')
  .option('--delay-ms <ms>', 'one-way delay added to every byte, each direction', '25')
  .option('--rate-mbps <MB/s>', 'rate of each direction of each connection, in MB/s (10^6 bytes)', '100')
  .option('--queue-bytes <n>', 'bytes a direction may hold waiting for the wire before it stops reading', String(4 * 1024 * 1024))
  .parse();
const options = program.opts<{ host: string; port: string; target: string; delayMs: string; rateMbps: string; queueBytes: string }>();
const at = options.target.lastIndexOf(':');
const target = { host: options.target.slice(0, at), port: Number(options.target.slice(at + 1)) };
const delayMs = Number(options.delayMs);
/** Bytes per millisecond. */
const rate = (Number(options.rateMbps) * 1e6) / 1000;
/**
 * Bytes waiting for their turn on the wire (not those already sent and in their delay) before
 * the link stops reading, as a router's queue; reading resumes below half of it.
 */
const queueBytes = Number(options.queueBytes);

/** One direction: chunks leave `from`, wait their turn and their delay, then go to `to`. */
function delayLine(from: net.Socket, to: net.Socket): void {
  const queue: Array<{ chunk: Buffer; due: number }> = [];
  let head = 0;
  let lastDeparture = 0;
  const backlog = (now: number): number => Math.max(0, lastDeparture - now) * rate;
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  let blocked = false;
  const flush = (): void => {
    timer = undefined;
    const now = performance.now();
    while (head < queue.length && queue[head].due <= now && !blocked) {
      const { chunk } = queue[head++];
      if (!to.write(chunk)) blocked = true;
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    }
    if (from.isPaused() && backlog(now) < queueBytes / 2) from.resume();
    if (head < queue.length) {
      if (!blocked) timer = setTimeout(flush, Math.max(0, queue[head].due - now));
    } else if (ended) to.end();
  };
  to.on('drain', () => {
    blocked = false;
    if (timer === undefined) flush();
  });
  from.on('data', (chunk: Buffer) => {
    const now = performance.now();
    // Serialised at the link's rate after whatever is still queued, then delayed.
    lastDeparture = Math.max(now, lastDeparture) + chunk.length / rate;
    queue.push({ chunk, due: lastDeparture + delayMs });
    if (backlog(now) > queueBytes) from.pause();
    if (timer === undefined && !blocked) timer = setTimeout(flush, Math.max(0, queue[head].due - now));
  });
  from.on('end', () => {
    ended = true;
    if (head === queue.length && timer === undefined) to.end();
  });
}

const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
  const upstream = net.connect({
    host: target.host,
    port: target.port,
    noDelay: true,
    allowHalfOpen: true,
    ...(client.remoteAddress && net.isIPv4(client.remoteAddress) ? { localAddress: client.remoteAddress } : {}),
  });
  const kill = (): void => {
    client.destroy();
    upstream.destroy();
  };
  // A clean end travels through the delay line like data; only a failure cuts both at once.
  client.on('error', kill);
  upstream.on('error', kill);
  delayLine(client, upstream);
  delayLine(upstream, client);
});

server.listen({ host: options.host, port: Number(options.port), backlog: 1024 }, () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(`listening on ${address.address}:${address.port}\n`);
});

const stop = (): void => {
  server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
