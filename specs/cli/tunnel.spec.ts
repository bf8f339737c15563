/** `alphanet expose` and `alphanet forward` as real processes, with an HTTP request through them. */
import http from 'node:http';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import { relayFor } from '../client/fixtures.ts';

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));

interface Running {
  child: ChildProcessWithoutNullStreams;
  /** The first stdout line (the ready line). */
  ready: Promise<string>;
  stdout: () => string;
  stderr: () => string;
}

/** Spawns `alphanet ...args`, killed in teardown if still running. */
function start(t: Test, args: string[]): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ALPHANET_RELAY: '', ALPHANET_LOG_LEVEL: 'info' } });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c;
      const newline = out.indexOf('\n');
      if (newline >= 0) resolve(out.slice(0, newline));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready: ${err}`)));
  });
  ready.catch(() => {});
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, ready, stdout: () => out, stderr: () => err };
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/hello', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

t.test('expose + forward processes carry an HTTP request, then print a summary on SIGINT', async (t) => {
  const relay = await relayFor(t);
  const relayFlag = ['--relay', `127.0.0.1:${relay.port}`];
  const server = http.createServer((req, res) => res.end(`you asked for ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const httpPort = (server.address() as { port: number }).port;

  const exposing = start(t, ['expose', ...relayFlag, '--local-address', '127.0.0.2', '8080', `127.0.0.1:${httpPort}`]);
  const exposeReady = await exposing.ready;
  const m = /^exposing (10\.0\.\d+\.\d+):8080 -> 127\.0\.0\.1:(\d+)$/.exec(exposeReady);
  t.ok(m, `ready line: ${exposeReady}`);
  const virtualIp = (m as RegExpExecArray)[1];

  const forwarding = start(t, ['forward', ...relayFlag, '--local-address', '127.0.0.3', '0', `${virtualIp}:8080`]);
  const forwardReady = await forwarding.ready;
  const f = /^forwarding 127\.0\.0\.1:(\d+) -> 10\.0\.\d+\.\d+:8080$/.exec(forwardReady);
  t.ok(f, `ready line: ${forwardReady}`);
  const localPort = Number((f as RegExpExecArray)[1]);

  const res = await get(localPort);
  t.same(res, { status: 200, body: 'you asked for /hello' });

  for (const [name, running] of [['forward', forwarding], ['expose', exposing]] as const) {
    const exited = once(running.child, 'close');
    running.child.kill('SIGINT');
    const [code] = await exited;
    t.equal(code, 0, `${name} exits 0 on SIGINT`);
    if (code !== 0) t.comment(running.stderr());
    t.match(running.stdout(), new RegExp(`${name} summary: 1 connection \\(0 refused\\), \\d+ bytes to .*, \\d+ bytes from it\\n$`));
    const lines = running.stderr().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    t.ok(lines.some((l) => l.msg === 'connection opened'), `${name} logged the open`);
    // SIGINT may come before the HTTP connection's own close has crossed the tunnel; then the
    // same line says 'connection reset'. Either way it is the close line, with bytes each way.
    const closed = lines.find((l) => l.msg === 'connection closed' || l.msg === 'connection reset');
    t.match(closed, { tcpToVirtualBytes: Number, virtualToTcpBytes: Number }, `${name} logged the close with bytes each way`);
    t.ok(lines.some((l) => l.msg === 'tunnel closed' && l.total === 1), `${name} logged the summary`);
  }
});

t.test('bad arguments are named, exit non-zero', async (t) => {
  const bad = start(t, ['forward', '--relay', '127.0.0.1:1', '0', 'not-an-endpoint']);
  const [code] = await once(bad.child, 'close');
  t.equal(code, 1);
  t.match(bad.stderr(), /"not-an-endpoint" is not HOST:PORT/);
  // A host name is not a virtual address: said before any relay is tried (this one is unreachable).
  const named = start(t, ['forward', '--relay', '127.0.0.1:1', '0', 'example.com:80']);
  const [namedCode] = await once(named.child, 'close');
  t.equal(namedCode, 1);
  t.match(named.stderr(), /"example\.com" is not a virtual IPv4 address/);
  t.notMatch(named.stderr(), /ERR_RELAY_UNREACHABLE/);
});
