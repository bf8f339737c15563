/** An HTTP server in the spec, served through expose + forward. */
import http from 'node:http';
import { createHash } from 'node:crypto';
import t from 'tap';
import { pseudoRandom, sha256 } from '../client/fixtures.ts';
import { MIB, tunnelTo } from './fixtures.ts';

const DOWNLOAD_BYTES = 20 * MIB;
const PARALLEL_REQUESTS = 50;

async function httpServer(t: Parameters<typeof tunnelTo>[0], handler: http.RequestListener): Promise<number> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

/** GET through the tunnel; resolves with status, headers and the body's digest and length. */
function get(port: number, path: string, agent: http.Agent | false = false): Promise<{ status: number; body: Buffer; digest: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
        if (length <= 4096) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), digest: `${hash.digest('hex')}:${length}` }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

t.test('a 20 MiB download arrives byte for byte', async (t) => {
  const payload = pseudoRandom(41, DOWNLOAD_BYTES);
  const port = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': payload.length });
    res.end(payload);
  });
  const { forwarded, exposed, forwardLog, exposeLog } = await tunnelTo(t, { host: '127.0.0.1', port });
  const closedLine = forwardLog.next('connection closed');
  const started = performance.now();
  const res = await get(forwarded.port, '/big');
  const seconds = (performance.now() - started) / 1000;
  t.equal(res.status, 200);
  t.equal(res.digest, `${sha256(payload)}:${payload.length}`, 'SHA-256 and length match');
  t.comment(`20 MiB over HTTP through expose + relay + forward in ${seconds.toFixed(2)} s (${(20 / seconds).toFixed(1)} MiB/s)`);
  // The close line carries the bytes each way: the response plus headers came back.
  const line = await closedLine;
  t.ok((line.virtualToTcpBytes as number) > DOWNLOAD_BYTES, 'forward logged the bytes it delivered');
  t.ok((line.tcpToVirtualBytes as number) > 0, 'and the request bytes it sent');
  t.match(exposeLog.lines.find((l) => l.msg === 'connection opened'), { from: /^10\.0\.\d+\.\d+:\d+$/, to: `127.0.0.1:${port}` });
  t.equal(forwarded.stats().total, 1);
  t.ok(exposed.stats().tcpToVirtualBytes > DOWNLOAD_BYTES, 'expose counted the response');
});

t.test('50 parallel requests, each on its own connection, each answered correctly', async (t) => {
  let peak = 0;
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  const port = await httpServer(t, (req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'));
    const body = Buffer.from(pseudoRandom(1000 + n, 64 * 1024));
    // Answer only after every request has arrived, so they are all open at once.
    const answer = (): void => {
      res.writeHead(200, { 'content-length': body.length, 'x-n': String(n) });
      res.end(body, () => inFlight--);
    };
    if (inFlight === PARALLEL_REQUESTS) for (const fn of waiting.splice(0).concat(answer)) fn();
    else waiting.push(answer);
  });
  const { forwarded, exposed } = await tunnelTo(t, { host: '127.0.0.1', port });
  const results = await Promise.all(
    Array.from({ length: PARALLEL_REQUESTS }, (_, n) => get(forwarded.port, `/item?n=${n}`)),
  );
  t.equal(peak, PARALLEL_REQUESTS, 'all requests were open at once');
  for (const [n, res] of results.entries()) {
    if (res.digest !== `${sha256(pseudoRandom(1000 + n, 64 * 1024))}:${64 * 1024}`) t.fail(`response ${n} is wrong`);
  }
  t.equal(results.filter((r) => r.status === 200).length, PARALLEL_REQUESTS);
  t.equal(forwarded.stats().total, PARALLEL_REQUESTS, 'one virtual connection per TCP connection');
  t.equal(exposed.stats().total, PARALLEL_REQUESTS);
});
