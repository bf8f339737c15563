/** `alphanet expose` and `alphanet forward` as real processes: an HTTP request through them, and how they stop. */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import type { Test } from 'tap';
import { relayFor } from '../client/fixtures.ts';
import { startCli, type Running } from './tunnel-process.ts';
import { within } from '../helpers/wait.ts';


const start = startCli;

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

/** Resolves once the process has logged a line with this message. */
function logged(running: Running, msg: string): Promise<void> {
  return within(
    `the log line "${msg}"`,
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (running.stderr().split('\n').some((l) => l.includes(`"msg":"${msg}"`))) resolve();
        else setTimeout(check, 10);
      };
      check();
    }),
    10_000,
  );
}

/** An echo server, expose and forward processes with `forwardArgs`; returns the forward's port. */
async function echoTunnel(t: Test, forwardArgs: string[] = []): Promise<{ relay: Awaited<ReturnType<typeof relayFor>>; forwarding: Running; exposing: Running; port: number }> {
  const relay = await relayFor(t);
  const relayFlag = ['--relay', `127.0.0.1:${relay.port}`];
  const sockets = new Set<net.Socket>();
  const echo = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    echo.close();
  });
  const exposing = start(t, ['expose', ...relayFlag, '--local-address', '127.0.0.2', '7', `127.0.0.1:${(echo.address() as net.AddressInfo).port}`]);
  const virtualIp = /^exposing (\S+):7 /.exec(await within('expose ready', exposing.ready, 20_000))![1];
  const forwarding = start(t, ['forward', ...relayFlag, '--local-address', '127.0.0.3', ...forwardArgs, '0', `${virtualIp}:7`]);
  const port = Number(/^forwarding 127\.0\.0\.1:(\d+) /.exec(await within('forward ready', forwarding.ready, 20_000))![1]);
  return { relay, forwarding, exposing, port };
}

/** A TCP connection to `port`, with the bytes it gets back. */
async function dial(port: number): Promise<{ socket: net.Socket; echoed: (bytes: number) => Promise<string>; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => {});
  await within('TCP connect to the forward', once(socket, 'connect'), 5_000);
  let got = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (got += chunk));
  const echoed = (bytes: number): Promise<string> =>
    within(
      `${bytes} bytes echoed`,
      new Promise<string>((resolve) => {
        const check = (): void => (got.length >= bytes ? resolve(got) : void setTimeout(check, 5));
        check();
      }),
      10_000,
    );
  return { socket, echoed, closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
}

function exitOf(running: Running): Promise<[number | null, NodeJS.Signals | null]> {
  if (running.child.exitCode !== null) return Promise.resolve([running.child.exitCode, null]);
  return once(running.child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
}

t.test('SIGTERM: the forward stops listening, an open connection finishes within the grace period, then it exits 0', async (t) => {
  const { forwarding, port } = await echoTunnel(t, ['--grace', '60000']);
  const open = await dial(port);
  open.socket.write('ping');
  t.equal(await open.echoed(4), 'ping');
  const exited = exitOf(forwarding);
  forwarding.child.kill('SIGTERM');
  await logged(forwarding, 'stopping: no new connections; open ones may finish (signal again to exit now)');
  const refused = await within(
    'a connection attempt after SIGTERM',
    new Promise<string>((resolve) => {
      const late = net.connect({ host: '127.0.0.1', port });
      late.once('connect', () => (late.destroy(), resolve('connected')));
      late.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    }),
    5_000,
  );
  t.equal(refused, 'ECONNREFUSED', 'no new connections after the signal');
  open.socket.write('more');
  t.equal(await open.echoed(8), 'pingmore', 'the open connection still carries bytes both ways');
  open.socket.end();
  // Well inside the 60 s grace: the process goes as soon as its last connection has finished.
  const [code] = await within('the forward to exit after its last connection ended', exited, 20_000);
  t.equal(code, 0);
  t.match(forwarding.stdout(), /forward summary: 1 connection \(0 refused\), 8 bytes to .*, 8 bytes from it\n$/);
  t.ok(forwarding.stderr().includes('"msg":"connection closed"'), 'the connection ended cleanly, not by a reset');
});

t.test('a connection still open when the grace period ends is reset, and the process exits 0', async (t) => {
  const { forwarding, port } = await echoTunnel(t, ['--grace', '200']);
  const open = await dial(port);
  open.socket.write('ping');
  await open.echoed(4);
  const exited = exitOf(forwarding);
  forwarding.child.kill('SIGINT');
  await within('the open connection to be closed after the grace period', open.closed, 10_000);
  const [code] = await within('the forward to exit', exited, 10_000);
  t.equal(code, 0);
  t.ok(forwarding.stderr().includes('"msg":"connection reset"'), 'the connection was reset');
});

t.test('a second signal exits at once', async (t) => {
  const { exposing, port } = await echoTunnel(t);
  // expose with the default grace, and a connection that never ends by itself.
  const open = await dial(port);
  open.socket.write('ping');
  await open.echoed(4);
  const exited = exitOf(exposing);
  exposing.child.kill('SIGTERM');
  await logged(exposing, 'stopping: no new connections; open ones may finish (signal again to exit now)');
  exposing.child.kill('SIGTERM');
  const [code] = await within('expose to exit on the second signal, before its 5 s grace period', exited, 3_000);
  t.equal(code, 143, 'exit status 128 + SIGTERM');
  t.match(exposing.stderr(), /SIGTERM again: exiting now/);
  t.match(exposing.stdout(), /expose summary: 1 connection/);
});

t.test('a forward that gets SIGTERM while its relay dies exits', async (t) => {
  const { relay, forwarding, port } = await echoTunnel(t, ['--grace', '500']);
  const open = await dial(port);
  open.socket.write('ping');
  await open.echoed(4);
  const exited = exitOf(forwarding);
  const relayGone = relay.close();
  forwarding.child.kill('SIGTERM');
  await relayGone;
  const [code] = await within('the forward to exit though its relay died in the same moment', exited, 10_000);
  t.equal(code, 0);
  t.match(forwarding.stdout(), /forward summary: 1 connection/);
});
