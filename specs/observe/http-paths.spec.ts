import t from 'tap';
import net from 'node:net';
import fc from 'fast-check';
import { observedRelay } from './observed-relay.ts';
import { fetchWithin } from './wait.ts';

const RESPONSE_TIMEOUT_MS = 5_000;

/**
 * Sends one raw request line (bytes exactly as given: no client-side normalisation of `//`,
 * `..` or bad escapes) and resolves with the response's status code.
 */
function statusOf(port: number, target: string, method = 'GET'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let head = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no status line for ${method} ${JSON.stringify(target)} within ${RESPONSE_TIMEOUT_MS} ms`));
    }, RESPONSE_TIMEOUT_MS);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(head);
      if (m) {
        clearTimeout(timer);
        socket.destroy(); // /api/events never ends by itself
        resolve(Number(m[1]));
      }
    });
    socket.write(Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`, 'utf8'));
  });
}

t.test('paths that used to answer 500 answer 4xx', async (t) => {
  const { http: server } = await observedRelay(t);
  t.equal(await statusOf(server.port, '//'), 404, 'GET // is a path like any other, not a URL with an empty host');
  t.equal(await statusOf(server.port, '/api/machines/%E0%A4%A.svg'), 400, 'a malformed percent-encoding is the client’s mistake');
  t.equal(await statusOf(server.port, '/api/machines/socket%50air.svg'), 200, 'a well-formed escape still decodes');
  t.equal(await statusOf(server.port, '/api/status?limit=-1'), 400, 'a negative limit');
  t.equal(await statusOf(server.port, '/api/status?offset=1e3'), 400, 'an offset that is not a whole number');
  t.equal(await statusOf(server.port, 'http://127.0.0.1/api/status'), 400, 'an absolute-form target (meant for a proxy)');
  t.equal(await statusOf(server.port, '/api/status', 'DELETE'), 405);
  const body = await (await fetchWithin(`${server.url}/api/machines/%E0%A4%A.svg`)).json();
  t.match(body, { error: /malformed percent-encoding/ }, 'the 400 says why');
});

t.test('fuzzed request targets never get a 5xx', async (t) => {
  // Streams are cut as fast as they open, but a close may trail the next open: room enough that
  // the deliberate 503 for too many streams cannot stand in for a router failure here.
  const { http: server, observation } = await observedRelay(t, { maxEventStreams: 1000 });
  // Known prefixes so the fuzz reaches every route's parsing, then anything after them.
  const prefix = fc.constantFrom('/', '//', '/api/', '/api/status?', '/api/status?limit=', '/api/status?offset=', '/api/events?', '/api/machines/', '/metrics', '/healthz', '/index.html', '/%', '/%%');
  const tail = fc.oneof(
    fc.webPath(),
    fc.string({ unit: fc.constantFrom('%', '/', '?', '#', '.', '=', '&', 'E0', 'A4', 'ff', 'a', '9', '%2F', '%00', 'é', '\u{1F600}', '\\', ';', '+', '\u0000', ' ') }),
    fc.string({ unit: 'binary' }),
  );
  let sent = 0;
  await fc.assert(
    fc.asyncProperty(prefix, tail, async (p, rest) => {
      // A space or CR/LF would end the request line: that is a different request, not another path.
      const target = (p + rest).replace(/[ \r\n]/g, '%20');
      sent++;
      const code = await statusOf(server.port, target);
      return code < 500;
    }),
    { numRuns: 400 },
  );
  const metrics = await observation.metrics!.metrics();
  t.notMatch(metrics, /alphanet_http_responses_total\{code="5\d\d"\}/, 'no 5xx counted either');
  t.ok(sent >= 400, `${sent} targets sent`);
});
