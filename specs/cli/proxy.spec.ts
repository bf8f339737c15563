/**
 * `alphanet proxy` as a real process: real curl through it by SOCKS5 and HTTP CONNECT (when curl
 * is installed; the socks library and raw CONNECT otherwise), refusals as curl reports them, the
 * summary on SIGINT, and bad flags named before anything connects.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { SocksClient } from 'socks';
import t from 'tap';
import type { Test } from 'tap';
import { expose } from '../../tunnel/index.ts';
import { clientFor, relayFor } from '../client/fixtures.ts';
import { run, start, type Running } from '../helpers/child-process.ts';

const BIN = fileURLToPath(new URL('../../bin/alphanet.js', import.meta.url));
const CURL = '/usr/bin/curl';
// ALPHANET_SPEC_NO_CURL=1 runs the fallback path on a machine that has curl.
const HAVE_CURL = existsSync(CURL) && !process.env.ALPHANET_SPEC_NO_CURL;
const VIRTUAL_PORT = 8080;
const OFFLINE_IP = '10.0.250.1';
const WAIT_MS = 20_000;

/** `alphanet ...args` as a child; killed in teardown if still running. */
function alphanet(t: Test, args: string[]): Running {
  const running = start(process.execPath, [BIN, ...args], { env: { ...process.env, ALPHANET_RELAY: '', ALPHANET_LOG_LEVEL: 'info', ALPHANET_PLAINTEXT: '1' } });
  t.teardown(() => {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
  });
  return running;
}

/**
 * A relay and an HTTP server exposed at VIRTUAL_PORT by an in-process client on 127.0.0.2, then
 * `alphanet proxy` on 127.0.0.3 with `args`; resolves once it printed its ready line.
 */
async function proxyProcess(t: Test, args: string[] = []): Promise<{ proxying: Running; port: number; virtualIp: string }> {
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  const server = http.createServer((req, res) => res.end(`you asked for ${req.url}\n`));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const exposed = await expose({ client: serving, port: VIRTUAL_PORT, target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port } });
  t.teardown(() => exposed.close());
  const proxying = alphanet(t, ['proxy', '--relay', `127.0.0.1:${relay.port}`, '--local-address', '127.0.0.3', '--listen', '127.0.0.1:0', ...args]);
  const ready = await proxying.waitFor(/^proxy listening on 127\.0\.0\.1:(\d+) \(SOCKS5 and HTTP CONNECT\)\n/, WAIT_MS);
  return { proxying, port: Number(ready[1]), virtualIp: serving.virtualIp };
}

/** GET `url` through the proxy at `port` by `via`, with curl if installed, else in-process; resolves with body or refusal. */
async function fetchThrough(port: number, via: 'socks5' | 'connect', url: URL): Promise<{ ok: boolean; text: string }> {
  if (HAVE_CURL) {
    const proxyArgs = via === 'socks5' ? ['--socks5-hostname', `127.0.0.1:${port}`] : ['-p', '-x', `http://127.0.0.1:${port}`];
    const r = await run(CURL, ['-sS', '--max-time', '15', ...proxyArgs, url.href], WAIT_MS);
    return { ok: r.code === 0, text: r.code === 0 ? r.stdout : r.stderr.trim() };
  }
  // URL drops a default port (":80"), which a proxy request must still name.
  const target = { host: url.hostname, port: Number(url.port || 80) };
  const authority = `${target.host}:${target.port}`;
  const request = `GET ${url.pathname} HTTP/1.0\r\nHost: ${authority}\r\n\r\n`;
  let socket: net.Socket;
  if (via === 'socks5') {
    try {
      socket = (await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port, type: 5 }, command: 'connect', destination: target, timeout: WAIT_MS })).socket;
    } catch (error) {
      return { ok: false, text: (error as Error).message };
    }
  } else {
    socket = net.connect({ host: '127.0.0.1', port });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  }
  socket.write(request);
  const answer = await new Promise<string>((resolve, reject) => {
    let text = '';
    socket.setEncoding('latin1').on('data', (c: string) => (text += c));
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
    setTimeout(() => reject(new Error(`no answer through the proxy within ${WAIT_MS} ms`)), WAIT_MS).unref();
  });
  if (via === 'connect') {
    const m = /^HTTP\/1\.1 (\d+)[^\r]*\r\n/.exec(answer);
    if (m?.[1] !== '200') return { ok: false, text: `CONNECT tunnel failed, response ${m?.[1]}` };
  }
  return { ok: true, text: answer.slice(answer.lastIndexOf('\r\n\r\n') + 4) };
}

t.test('curl reaches a virtual host by SOCKS5 and by HTTP CONNECT through `alphanet proxy`; SIGINT prints the summary', async (t) => {
  if (!HAVE_CURL) t.comment(`${CURL} is not installed: driving the proxy with the socks library and a raw CONNECT instead`);
  const { proxying, port, virtualIp } = await proxyProcess(t);
  const socks = await fetchThrough(port, 'socks5', new URL(`http://${virtualIp}:${VIRTUAL_PORT}/by-socks`));
  t.same(socks, { ok: true, text: 'you asked for /by-socks\n' }, 'SOCKS5 (host name resolved by the proxy)');
  const connect = await fetchThrough(port, 'connect', new URL(`http://${virtualIp}:${VIRTUAL_PORT}/by-connect`));
  t.same(connect, { ok: true, text: 'you asked for /by-connect\n' }, 'HTTP CONNECT');

  const exited = proxying.exited(WAIT_MS);
  proxying.child.kill('SIGINT');
  const ran = await exited;
  t.equal(ran.code, 0, 'exits 0 on SIGINT');
  t.match(ran.stdout, /\nproxy summary: 2 connections \(0 refused\), \d+ bytes to virtual hosts, \d+ bytes from them\n$/);
  const lines = ran.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const opened = lines.filter((l) => l.msg === 'connection opened');
  t.match(opened, [{ protocol: 'socks5', to: `${virtualIp}:${VIRTUAL_PORT}` }, { protocol: 'http-connect', to: `${virtualIp}:${VIRTUAL_PORT}` }], 'one open line per connection, with its protocol');
  t.ok(lines.some((l) => l.msg === 'tunnel closed' && l.total === 2), 'the closing totals are logged');
});

t.test('refusals as curl reports them: SOCKS5 reply codes and HTTP statuses', async (t) => {
  if (!HAVE_CURL) t.comment(`${CURL} is not installed: checking the refusals with the socks library and a raw CONNECT instead`);
  const { proxying, port, virtualIp } = await proxyProcess(t, ['--allow', '10.0.0.0/16']);
  const socksCases: Array<[string, string, RegExp]> = [
    ['offline host', `http://${OFFLINE_IP}:80/`, HAVE_CURL ? /\(4\)$/ : /HostUnreachable/],
    ['nothing listening', `http://${virtualIp}:81/`, HAVE_CURL ? /\(5\)$/ : /ConnectionRefused/],
    ['not on --allow', 'http://10.1.0.1:80/', HAVE_CURL ? /\(2\)$/ : /NotAllowed/],
  ];
  for (const [what, url, code] of socksCases) {
    const r = await fetchThrough(port, 'socks5', new URL(url));
    t.equal(r.ok, false, `${what}: refused`);
    t.match(r.text, code, `${what}: ${r.text}`);
  }
  for (const [what, url, status] of [
    ['offline host', `http://${OFFLINE_IP}:80/`, '502'],
    ['not on --allow', 'http://10.1.0.1:80/', '403'],
  ] as const) {
    const r = await fetchThrough(port, 'connect', new URL(url));
    t.equal(r.ok, false, `CONNECT, ${what}: refused`);
    t.match(r.text, `CONNECT tunnel failed, response ${status}`, `CONNECT, ${what}: ${r.text}`);
  }
  const exited = proxying.exited(WAIT_MS);
  proxying.child.kill('SIGTERM');
  const ran = await exited;
  t.equal(ran.code, 0);
  t.match(ran.stdout, /proxy summary: 0 connections \(5 refused\)/);
});

t.test('bad flags are named and exit 1 before any relay is tried', async (t) => {
  for (const [args, said] of [
    [['--allow', '10.0.3.0/16'], /did you mean 10\.0\.0\.0\/16\?/],
    [['--allow', 'example.com'], /"example\.com" is not a virtual IPv4 address or CIDR block/],
    [['--listen', 'nowhere'], /"nowhere" is not HOST:PORT/],
  ] as const) {
    const r = await run(process.execPath, [BIN, 'proxy', '--relay', '127.0.0.1:1', ...args], WAIT_MS, { env: { ...process.env, ALPHANET_RELAY: '', ALPHANET_PLAINTEXT: '1' } });
    t.equal(r.code, 1, `${args.join(' ')}: exit 1`);
    t.match(r.stderr, said);
    t.notMatch(r.stderr, /ERR_RELAY_UNREACHABLE/);
  }
});
