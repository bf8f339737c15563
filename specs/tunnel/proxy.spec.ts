/**
 * proxy(): programs reach virtual hosts through one local port, by SOCKS5 (driven with the
 * `socks` client library, and with raw bytes where the library cannot say it) and HTTP CONNECT.
 * A serving client (127.0.0.2) exposes real TCP servers; the proxy runs on 127.0.0.3.
 */
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { SocksClient } from 'socks';
import type { SocksClientOptions } from 'socks';
import t from 'tap';
import type { Test } from 'tap';
import { expose, proxy } from '../../tunnel/index.ts';
import type { ProxyOptions, ProxyTimers, ProxyTunnel } from '../../tunnel/index.ts';
import type { Client } from '../../actors/client/index.ts';
import { clientFor, pseudoRandom, relayFor, sha256 } from '../client/fixtures.ts';
import { MIB, closeOf, collect, portOf, recordingLogger, tcpServer } from './fixtures.ts';
import { within } from '../helpers/wait.ts';

/** Virtual ports the serving client exposes. */
const HTTP_PORT = 80;
const EXCHANGE_PORT = 7;
const EXCHANGE_BYTES = 5 * MIB;
/** Every wait on the network is bounded by this. */
const WAIT_MS = 15_000;
const OFFLINE_IP = '10.0.250.1';

interface World {
  serving: Client;
  using: Client;
  socks: ProxyTunnel;
  log: ReturnType<typeof recordingLogger>;
  /** What the exchange server received, as a SHA-256, once its client ended. */
  exchangeReceived: Array<Promise<string>>;
}

/**
 * A relay; on 127.0.0.2 an HTTP server exposed at HTTP_PORT and an exchange server (receives
 * until FIN while sending EXCHANGE_BYTES of seed 2) at EXCHANGE_PORT; the proxy on 127.0.0.3.
 */
async function world(t: Test, options: Omit<ProxyOptions, 'listen' | 'logger'> = {}): Promise<World> {
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  const using = await clientFor(t, relay, 3);
  const httpServer = http.createServer((req, res) => res.end(`you asked for ${req.url}`));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    httpServer.closeAllConnections();
    httpServer.close();
  });
  const exchangeReceived: Array<Promise<string>> = [];
  const answer = pseudoRandom(2, EXCHANGE_BYTES);
  const exchange = await tcpServer(t, (socket) => {
    const received = collect(socket).then((bytes) => sha256(bytes));
    // A spec that resets the connection never asks; the rejection must not count as unhandled.
    received.catch(() => {});
    exchangeReceived.push(received);
    socket.end(answer);
  });
  for (const [port, target] of [
    [HTTP_PORT, (httpServer.address() as net.AddressInfo).port],
    [EXCHANGE_PORT, portOf(exchange)],
  ] as const) {
    const exposed = await expose({ client: serving, port, target: { host: '127.0.0.1', port: target } });
    t.teardown(() => exposed.close());
  }
  const log = recordingLogger();
  // Debug too: 'handshake started' tells a spec the proxy has read a connection's first bytes.
  log.logger.level = 'debug';
  const socks = await proxy(using, { listen: { port: 0 }, logger: log.logger, ...options });
  t.teardown(() => socks.close());
  return { serving, using, socks, log, exchangeReceived };
}

function socksOptions(socks: ProxyTunnel, destination: { host: string; port: number }, extra: Partial<SocksClientOptions> = {}): SocksClientOptions {
  return { proxy: { host: '127.0.0.1', port: socks.port, type: 5 }, command: 'connect', destination, timeout: WAIT_MS, ...extra };
}

/** A raw TCP connection to the proxy that writes `bytes` and resolves with everything sent back until close. */
async function raw(socks: ProxyTunnel, bytes: Buffer | Buffer[]): Promise<Buffer> {
  const socket = net.connect({ host: '127.0.0.1', port: socks.port });
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = closeOf(socket);
  await within('TCP connect to the proxy', once(socket, 'connect'), WAIT_MS);
  for (const piece of Array.isArray(bytes) ? bytes : [bytes]) socket.write(piece);
  await within('the proxy closing the connection', closed, WAIT_MS);
  return Buffer.concat(chunks);
}

/** SOCKS5 greeting (NO AUTH) followed by a request (§4) for `cmd`, address type `atyp`, `address`, `port`. */
function socksRequest(cmd: number, atyp: number, address: Buffer, port: number): Buffer {
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from([5, cmd, 0, atyp]), address, portBytes]);
}

function domain(name: string): Buffer {
  return Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'latin1')]);
}

t.test('5 MiB each way through SOCKS5, intact (SHA-256), and counted', async (t) => {
  const { serving, socks, log, exchangeReceived } = await world(t);
  const { socket } = await SocksClient.createConnection(socksOptions(socks, { host: serving.virtualIp, port: EXCHANGE_PORT }));
  const sent = pseudoRandom(1, EXCHANGE_BYTES);
  const received = collect(socket);
  socket.end(sent);
  const back = await within('5 MiB back from the exchange server', received, 60_000);
  t.equal(back.length, EXCHANGE_BYTES, 'every byte came back');
  t.equal(sha256(back), sha256(pseudoRandom(2, EXCHANGE_BYTES)), 'the bytes from the virtual host are intact and in order');
  t.equal(await within('the exchange server to see FIN', exchangeReceived[0], WAIT_MS), sha256(sent), 'the bytes to the virtual host are intact and in order');
  const opened = await within('the open logged', log.next('connection opened'), WAIT_MS);
  t.match(opened, { from: /^127\.0\.0\.1:\d+$/, to: `${serving.virtualIp}:${EXCHANGE_PORT}`, protocol: 'socks5' });
  const closedLine = await within('the connection closed log line', log.next('connection closed'), WAIT_MS);
  t.match(closedLine, { tcpToVirtualBytes: EXCHANGE_BYTES, virtualToTcpBytes: EXCHANGE_BYTES });
  t.match(socks.stats(), { total: 1, refused: 0, active: 0, tcpToVirtualBytes: EXCHANGE_BYTES, virtualToTcpBytes: EXCHANGE_BYTES });
});

t.test('proxy({ client, ...options }), the shape forward() and expose() take, carries bytes as proxy(client, options) does', async (t) => {
  const { serving, using, exchangeReceived } = await world(t);
  const second = await proxy({ client: using, listen: { port: 0 } });
  t.teardown(() => second.close());
  t.not(second.port, 0, 'a port was picked');
  const { socket } = await SocksClient.createConnection(socksOptions(second, { host: serving.virtualIp, port: EXCHANGE_PORT }));
  const sent = pseudoRandom(3, 64 * 1024);
  const received = collect(socket);
  socket.end(sent);
  t.equal(sha256(await within('the answer through the object-form proxy', received, WAIT_MS)), sha256(pseudoRandom(2, EXCHANGE_BYTES)), 'the answer is intact');
  t.equal(await within('the exchange server to see FIN', exchangeReceived[0], WAIT_MS), sha256(sent), 'the request is intact');
  t.match(second.stats(), { total: 1, refused: 0 });
});

t.test('a dotted IPv4 sent as DOMAINNAME (curl --socks5-hostname, browsers) reaches the host; early data is kept', async (t) => {
  const { serving, using, socks } = await world(t);
  const request = Buffer.from('GET /by-name HTTP/1.0\r\n\r\n');
  // Greeting, request and the HTTP request in one write: a client that does not wait for replies.
  const answer = await raw(socks, Buffer.concat([socksRequest(1, 3, domain(serving.virtualIp), HTTP_PORT), request]));
  t.same([...answer.subarray(0, 2)], [5, 0], 'method selection: no authentication');
  t.same([...answer.subarray(2, 6)], [5, 0, 0, 1], 'reply: succeeded, IPv4 BND.ADDR');
  t.equal([...answer.subarray(6, 10)].join('.'), using.virtualIp, "BND.ADDR is the proxy's virtual IP");
  t.not(answer.readUInt16BE(10), 0, 'BND.PORT is the virtual port the connection leaves from');
  t.match(answer.subarray(12).toString(), /^HTTP\/1\.1 200 OK[\s\S]*you asked for \/by-name$/);
});

t.test('the handshake split into single bytes still works', async (t) => {
  const { serving, socks } = await world(t);
  const bytes = Buffer.concat([socksRequest(1, 1, Buffer.from(serving.virtualIp.split('.').map(Number)), HTTP_PORT), Buffer.from('GET /bytes HTTP/1.0\r\n\r\n')]);
  const socket = net.connect({ host: '127.0.0.1', port: socks.port });
  const body = collect(socket);
  await within('TCP connect to the proxy', once(socket, 'connect'), WAIT_MS);
  for (const byte of bytes) {
    // One byte per write, each flushed before the next, so the proxy reads them one at a time.
    await new Promise<void>((resolve) => socket.write(Buffer.from([byte]), () => resolve()));
  }
  const answer = await within('the HTTP answer', body, WAIT_MS);
  t.same([...answer.subarray(0, 4)], [5, 0, 5, 0]);
  t.match(answer.subarray(12).toString(), /you asked for \/bytes$/);
});

t.test('refusals carry their SOCKS5 reply codes, and are logged with the reason', async (t) => {
  const { serving, socks, log } = await world(t, { allow: ['10.0.0.0/16'] });
  const cases: Array<[string, { host: string; port: number }, RegExp, RegExp]> = [
    ['offline host', { host: OFFLINE_IP, port: 80 }, /rejected connection - HostUnreachable/, /^ERR_TARGET_OFFLINE: /],
    ['nothing listening', { host: serving.virtualIp, port: 81 }, /rejected connection - ConnectionRefused/, /^ERR_NOT_LISTENING: /],
    ['not on the allow-list', { host: '10.1.0.1', port: 80 }, /rejected connection - NotAllowed/, /^ERR_NOT_ALLOWED: 10\.1\.0\.1 is not on the proxy's allow-list/],
  ];
  for (const [what, destination, rejected, reason] of cases) {
    await t.rejects(SocksClient.createConnection(socksOptions(socks, destination)), { message: rejected }, what);
    t.match(await within(`${what} logged`, log.next('connection refused'), WAIT_MS), { to: `${destination.host}:${destination.port}`, protocol: 'socks5', reason }, `${what}: logged`);
  }
  // createConnection() takes only CONNECT; a bare SocksClient speaks BIND.
  const binding = new SocksClient(socksOptions(socks, { host: serving.virtualIp, port: HTTP_PORT }, { command: 'bind' }));
  const bindFailed = once(binding, 'error');
  binding.connect();
  const [bindError] = (await within('the BIND refusal', bindFailed, WAIT_MS)) as [Error];
  t.match(bindError.message, /rejected connection - CommandNotSupported/, 'BIND is not supported');
  t.match(await within('the BIND refusal logged', log.next('connection refused'), WAIT_MS), { reason: /^ERR_PROXY_HANDSHAKE: BIND is not supported; only CONNECT/ });
  await t.rejects(
    SocksClient.createConnection({ ...socksOptions(socks, { host: serving.virtualIp, port: HTTP_PORT }), proxy: { host: '127.0.0.1', port: socks.port, type: 4 } }),
    { message: /Socks4 Proxy rejected connection/ },
    'a SOCKS4 client is told no in SOCKS4',
  );
  t.match(await within('the SOCKS4 refusal logged', log.next('connection refused'), WAIT_MS), { protocol: 'socks4', reason: /^ERR_PROXY_HANDSHAKE: SOCKS4 is not supported/ });
  t.match(socks.stats(), { total: 0, refused: 5, active: 0 });
});

t.test('refusals the library cannot provoke, in raw bytes', async (t) => {
  const { socks, log } = await world(t);
  const replyOf = (answer: Buffer): number[] => [...answer.subarray(2, 4)];
  t.same([...(await raw(socks, Buffer.from([5, 1, 2])))], [5, 0xff], 'only username/password offered: no acceptable method');
  t.same(replyOf(await raw(socks, socksRequest(1, 3, domain('example.com'), 80))), [5, 4], 'a name that is not a virtual address: host unreachable');
  t.match(log.lines.at(-1), { reason: /^ERR_TARGET_UNREACHABLE: "example\.com" is not a virtual IPv4 address/ });
  t.same(replyOf(await raw(socks, socksRequest(1, 4, Buffer.alloc(16, 1), 80))), [5, 8], 'IPv6: address type not supported');
  t.same(replyOf(await raw(socks, socksRequest(1, 9, Buffer.alloc(4), 80))), [5, 8], 'an unknown address type');
  t.same(replyOf(await raw(socks, socksRequest(3, 1, Buffer.from([10, 0, 0, 1]), 80))), [5, 7], 'UDP ASSOCIATE: command not supported');
  const badVersion = Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from([4, 1, 0, 1, 10, 0, 0, 1, 0, 80])]);
  t.same([...(await raw(socks, badVersion))], [5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0], 'a request with version 4 after a SOCKS5 greeting: general failure');
  t.match(socks.stats(), { total: 0, refused: 6 });
});

/** Timers that run only when the spec says, and tell it when one is set. */
function manualTimers(): ProxyTimers & { set: (ms: number) => Promise<() => void> } {
  const timers = new Map<number, { callback: () => void; ms: number }>();
  const waiters: Array<{ ms: number; resolve: (fire: () => void) => void }> = [];
  let next = 1;
  const fire = (id: number) => () => {
    const timer = timers.get(id);
    timers.delete(id);
    timer?.callback();
  };
  return {
    setTimeout(callback, ms) {
      const id = next++;
      timers.set(id, { callback, ms });
      const i = waiters.findIndex((w) => w.ms === ms);
      if (i >= 0) waiters.splice(i, 1)[0].resolve(fire(id));
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    /** Resolves with a function that fires the next (or a pending) timer of `ms`. */
    set(ms) {
      for (const [id, timer] of timers) if (timer.ms === ms) return Promise.resolve(fire(id));
      return new Promise((resolve) => waiters.push({ ms, resolve }));
    },
  };
}

t.test('a program that sends nothing is closed when its handshake times out', async (t) => {
  const timers = manualTimers();
  const { socks, log } = await world(t, { timers, handshakeTimeoutMs: 10_000 });
  const socket = net.connect({ host: '127.0.0.1', port: socks.port });
  const closed = closeOf(socket);
  let got = 0;
  socket.on('data', (c: Buffer) => (got += c.length));
  socket.on('end', () => socket.end());
  const expire = await within('the proxy to arm the handshake timeout', timers.set(10_000), WAIT_MS);
  t.equal(socks.stats().refused, 0, 'nothing refused before the timeout');
  expire();
  await within('the proxy to close the idle connection', closed, WAIT_MS);
  t.equal(got, 0, 'no bytes: SOCKS has no reply for a request that never came');
  t.match(await within('the timeout logged', log.next('connection refused'), WAIT_MS), { reason: 'ERR_PROXY_HANDSHAKE: no complete request within 10000 ms' });
  t.match(socks.stats(), { refused: 1, total: 0 });
});

t.test('with real timers, a silent connection is closed after handshakeTimeoutMs', async (t) => {
  const { socks } = await world(t, { handshakeTimeoutMs: 100 });
  const socket = net.connect({ host: '127.0.0.1', port: socks.port });
  const closed = closeOf(socket);
  socket.on('end', () => socket.end());
  const started = performance.now();
  await within('the proxy to close the idle connection', closed, WAIT_MS);
  t.ok(performance.now() - started >= 90, 'not before the timeout');
});

/** Sends `head` on a fresh connection and resolves with everything the proxy answers until close. */
async function httpAnswer(socks: ProxyTunnel, head: string): Promise<string> {
  return (await raw(socks, Buffer.from(head, 'latin1'))).toString('latin1');
}

t.test('HTTP CONNECT: 200 then the tunnel, with early data kept', async (t) => {
  const { serving, socks, log } = await world(t);
  const answer = await httpAnswer(socks, `CONNECT ${serving.virtualIp}:${HTTP_PORT} HTTP/1.1\r\nHost: ${serving.virtualIp}:${HTTP_PORT}\r\n\r\nGET /tunnelled HTTP/1.0\r\n\r\n`);
  t.match(answer, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*you asked for \/tunnelled$/);
  t.match(await within('the open logged', log.next('connection opened'), WAIT_MS), { protocol: 'http-connect', to: `${serving.virtualIp}:${HTTP_PORT}` });
});

t.test('HTTP CONNECT refusals: 403 not allowed, 502 offline / not listening / not an address, 405 other methods, 400, 431', async (t) => {
  const { serving, socks } = await world(t, { allow: ['10.0.0.0/16'], maxHeaderBytes: 1024 });
  const connect = (target: string): Promise<string> => httpAnswer(socks, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const refusal = (status: string, reason: RegExp): RegExp =>
    new RegExp(`^HTTP/1\\.1 ${status}\\r\\n[\\s\\S]*Connection: close\\r\\n\\r\\n${reason.source}\\n$`);
  t.match(await connect('10.1.0.1:80'), refusal('403 Forbidden', /ERR_NOT_ALLOWED: 10\.1\.0\.1 is not on the proxy's allow-list/));
  t.match(await connect(`${OFFLINE_IP}:80`), refusal('502 Bad Gateway', /ERR_TARGET_OFFLINE: .+/));
  t.match(await connect(`${serving.virtualIp}:81`), refusal('502 Bad Gateway', /ERR_NOT_LISTENING: .+/));
  t.match(await connect('example.com:443'), refusal('502 Bad Gateway', /ERR_TARGET_UNREACHABLE: "example\.com" is not a virtual IPv4 address.*/));
  const get = await httpAnswer(socks, `GET http://${serving.virtualIp}/ HTTP/1.1\r\nHost: ${serving.virtualIp}\r\n\r\n`);
  t.match(get, /^HTTP\/1\.1 405 Method Not Allowed\r\nAllow: CONNECT\r\n/);
  t.match(get, /GET is not supported: this proxy only opens tunnels .*curl use -p/);
  t.match(await httpAnswer(socks, 'CONNECT nowhere HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*CONNECT needs host:port/);
  t.match(await httpAnswer(socks, '\x16\x03\x01\x02\x00\x01\x00\x01'), /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*not an HTTP request/, 'TLS sent straight at the port');
  const huge = `CONNECT ${serving.virtualIp}:80 HTTP/1.1\r\n${'X-Filler: 0123456789abcdef\r\n'.repeat(64)}\r\n`;
  t.match(await httpAnswer(socks, huge), /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n[\s\S]*over 1024 bytes/);
  t.match(socks.stats(), { total: 0, refused: 8 });
});

t.test('a request that times out is answered 408 over HTTP', async (t) => {
  const timers = manualTimers();
  const { socks, log } = await world(t, { timers });
  const socket = net.connect({ host: '127.0.0.1', port: socks.port });
  const answer = collect(socket);
  await within('TCP connect to the proxy', once(socket, 'connect'), WAIT_MS);
  socket.write('CONNECT 10.0.0.1:80 HTTP/1.1\r\n');
  const expire = await within('the handshake timeout', timers.set(10_000), WAIT_MS);
  t.match(await within('the proxy to read the request line', log.next('handshake started'), WAIT_MS), { protocol: 'http-connect' });
  expire();
  t.match((await within('the 408', answer, WAIT_MS)).toString(), /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*no complete request within 10000 ms\n$/);
  socket.end();
});

t.test('close() resets live connections and closes those still in their handshake', async (t) => {
  const { serving, socks } = await world(t);
  // To the HTTP server, saying nothing: it waits for a request, so only the proxy can end this.
  const { socket: live } = await SocksClient.createConnection(socksOptions(socks, { host: serving.virtualIp, port: HTTP_PORT }));
  const liveClosed = closeOf(live);
  const idle = net.connect({ host: '127.0.0.1', port: socks.port });
  const idleClosed = closeOf(idle);
  await within('TCP connect to the proxy', once(idle, 'connect'), WAIT_MS);
  t.equal(socks.activeConnections, 1);
  await within('close()', socks.close(), WAIT_MS);
  t.equal(await within('the live connection to close', liveClosed, WAIT_MS), true, 'the live connection was reset');
  await within('the handshaking connection to close', idleClosed, WAIT_MS);
  const refused = await new Promise<string>((resolve) => {
    const late = net.connect({ host: '127.0.0.1', port: socks.port });
    late.once('connect', () => (late.destroy(), resolve('connected')));
    late.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  t.equal(refused, 'ECONNREFUSED', 'no longer listening');
});

t.test('bad options are refused before listening', async (t) => {
  const relay = await relayFor(t);
  const using = await clientFor(t, relay, 3);
  await t.rejects(proxy(using, { listen: { port: 0 }, allow: ['10.0.3.0/16'] }), { code: 'ERR_INVALID_ARGUMENT', message: /did you mean 10\.0\.0\.0\/16/ });
  await t.rejects(proxy(using, { listen: { port: 0 }, allow: ['example.com'] }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(proxy(using, { listen: { port: 70000 } }), { code: 'ERR_INVALID_ARGUMENT' });
  const taken = await proxy(using, { listen: { port: 0 } });
  t.teardown(() => taken.close());
  await t.rejects(proxy(using, { listen: { port: taken.port } }), { code: 'ERR_LISTEN_FAILED' });
});

t.test('at most maxHandshakes connections wait in their handshake; more are closed at once', async (t) => {
  const { socks, log } = await world(t, { maxHandshakes: 2 });
  const idle: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const socket = net.connect({ host: '127.0.0.1', port: socks.port });
    idle.push(socket);
    socket.on('error', () => {});
    await within('TCP connect to the proxy', once(socket, 'connect'), WAIT_MS);
  }
  t.teardown(() => idle.forEach((s) => s.destroy()));
  const third = net.connect({ host: '127.0.0.1', port: socks.port });
  await within('the third connection to be closed', closeOf(third), WAIT_MS);
  t.match(await within('the refusal logged', log.next('connection refused'), WAIT_MS), { reason: 'ERR_PROXY_HANDSHAKE: 2 connections are already in their handshake' });
  t.ok(idle.every((s) => !s.destroyed), 'the first two still wait');
});

t.test('shutdown(): no new connections, a live one finishes, then the proxy closes', async (t) => {
  const { serving, socks } = await world(t);
  const { socket } = await SocksClient.createConnection(socksOptions(socks, { host: serving.virtualIp, port: HTTP_PORT }));
  const answer = collect(socket);
  const done = socks.shutdown(60_000);
  const late = await within(
    'a connection attempt after shutdown()',
    new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: socks.port });
      s.once('connect', () => (s.destroy(), resolve('connected')));
      s.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    }),
    WAIT_MS,
  );
  t.equal(late, 'ECONNREFUSED', 'no longer listening');
  socket.end('GET /during-shutdown HTTP/1.0\r\n\r\n');
  t.match((await within('the answer on the live connection', answer, WAIT_MS)).toString(), /you asked for \/during-shutdown$/);
  await within('shutdown() to finish once the live connection ended, well before its 60 s grace', done, WAIT_MS);
  t.match(socks.stats(), { total: 1, active: 0 });
});

t.test('while the relay is down, requests get general failure (0x01 / 502)', async (t) => {
  const relay = await relayFor(t);
  const using = await clientFor(t, relay, 3, { reconnect: true });
  const socks = await proxy(using, { listen: { port: 0 } });
  t.teardown(() => socks.close());
  await relay.close();
  await within(
    'the client to notice the relay is gone',
    new Promise<void>((resolve) => {
      const subscription = using.actor.subscribe((snapshot) => {
        if (snapshot.matches('reconnecting')) (subscription.unsubscribe(), resolve());
      });
      if (using.actor.getSnapshot().matches('reconnecting')) (subscription.unsubscribe(), resolve());
    }),
    WAIT_MS,
  );
  await t.rejects(SocksClient.createConnection(socksOptions(socks, { host: '10.0.0.1', port: 80 })), { message: /rejected connection - Failure$/ });
  t.match(await httpAnswer(socks, 'CONNECT 10.0.0.1:80 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 502 Bad Gateway\r\n[\s\S]*ERR_RELAY_LOST: /);
});

t.test('a target that never answers: ERR_TIMEOUT is host unreachable (0x04) and 504', async (t) => {
  const relay = await relayFor(t);
  const serving = await clientFor(t, relay, 2);
  // Short, so the proxy's client gives up long before the relay's own 10 s request timeout.
  const using = await clientFor(t, relay, 3, { requestTimeoutMs: 300 });
  let decide: (() => void) | undefined;
  // A listener whose accept decision never comes (until teardown): the request hangs.
  const silent = await serving.listen(90, { accept: () => new Promise<boolean>((resolve) => (decide = () => resolve(false))) });
  t.teardown(() => {
    decide?.();
    silent.close();
  });
  const log = recordingLogger();
  const socks = await proxy(using, { listen: { port: 0 }, logger: log.logger });
  t.teardown(() => socks.close());
  await t.rejects(SocksClient.createConnection(socksOptions(socks, { host: serving.virtualIp, port: 90 })), { message: /rejected connection - HostUnreachable$/ });
  t.match(await within('the timeout logged', log.next('connection refused'), WAIT_MS), { reason: /^ERR_TIMEOUT: / });
  t.match(await httpAnswer(socks, `CONNECT ${serving.virtualIp}:90 HTTP/1.1\r\n\r\n`), /^HTTP\/1\.1 504 Gateway Timeout\r\n[\s\S]*ERR_TIMEOUT: /);
});

t.test('a program that closes in the middle of its handshake is logged and let go', async (t) => {
  const { socks, log } = await world(t);
  const socket = net.connect({ host: '127.0.0.1', port: socks.port });
  const closed = closeOf(socket);
  await within('TCP connect to the proxy', once(socket, 'connect'), WAIT_MS);
  socket.end(Buffer.from([5, 1]));
  await within('the connection to close', closed, WAIT_MS);
  t.match(await within('the early close logged', log.next('connection refused'), WAIT_MS), { protocol: 'socks5', reason: 'ERR_PROXY_HANDSHAKE: the program closed before its request was complete' });
  t.match(socks.stats(), { total: 0, refused: 1, active: 0 });
});
