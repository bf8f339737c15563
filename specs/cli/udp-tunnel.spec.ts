/**
 * `alphanet expose --udp` and `alphanet forward --udp` as real processes (docs/TUNNELS.md "--udp"):
 * a real UDP echo server (node:dgram) reached through forward → relay → expose, 100 datagrams
 * echoed intact, each to the sender it came from, and the summaries on SIGINT.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import t from 'tap';
import type { Test } from 'tap';
import { relayFor } from '../client/fixtures.ts';
import { startCli } from './tunnel-process.ts';
import { within } from '../helpers/wait.ts';

const WAIT_MS = 15_000;

const start = startCli;

/** A UDP socket on loopback port 0 that collects what it receives. */
async function udpSocket(t: Test): Promise<{ socket: dgram.Socket; port: number; received: Buffer[]; waitFor: (n: number) => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  t.teardown(() => socket.close());
  const received: Buffer[] = [];
  let wake = (): void => {};
  socket.on('message', (bytes) => {
    received.push(bytes);
    wake();
  });
  const waitFor = (n: number): Promise<void> =>
    within(
      `${n} datagrams (have ${received.length})`,
      new Promise<void>((resolve) => {
        wake = () => {
          if (received.length >= n) resolve();
        };
        wake();
      }),
      WAIT_MS,
    );
  return { socket, port: socket.address().port, received, waitFor };
}

t.test('a UDP echo server through forward --udp and expose --udp: 100 datagrams echoed intact to their senders', async (t) => {
  const relay = await relayFor(t);
  const relayFlag = ['--relay', `127.0.0.1:${relay.port}`];
  const echo = dgram.createSocket('udp4');
  echo.on('message', (bytes, rinfo) => echo.send(bytes, rinfo.port, rinfo.address));
  echo.bind(0, '127.0.0.1');
  await once(echo, 'listening');
  t.teardown(() => echo.close());
  const echoPort = echo.address().port;

  const exposing = start(t, ['expose', '--udp', ...relayFlag, '--local-address', '127.0.0.2', '7777', `127.0.0.1:${echoPort}`]);
  const exposeReady = await within('the expose ready line', exposing.ready, WAIT_MS);
  const m = /^exposing udp (10\.0\.\d+\.\d+):7777 -> 127\.0\.0\.1:(\d+)$/.exec(exposeReady);
  t.ok(m, `ready line: ${exposeReady}`);
  const virtualIp = (m as RegExpExecArray)[1];

  const forwarding = start(t, ['forward', '--udp', ...relayFlag, '--local-address', '127.0.0.3', '0', `${virtualIp}:7777`]);
  const forwardReady = await within('the forward ready line', forwarding.ready, WAIT_MS);
  const f = /^forwarding udp 127\.0\.0\.1:(\d+) -> 10\.0\.\d+\.\d+:7777$/.exec(forwardReady);
  t.ok(f, `ready line: ${forwardReady}`);
  const localPort = Number((f as RegExpExecArray)[1]);

  const a = await udpSocket(t);
  const b = await udpSocket(t);
  const payload = (sender: string, i: number): Buffer => Buffer.concat([Buffer.from(`${sender}${i}:`), Buffer.alloc((i * 37) % 1200, i & 0xff)]);
  // The first datagram of each sender opens its flow; the rest go in a burst once it is open.
  a.socket.send(payload('a', 0), localPort, '127.0.0.1');
  b.socket.send(payload('b', 0), localPort, '127.0.0.1');
  await a.waitFor(1);
  await b.waitFor(1);
  for (let i = 1; i < 100; i++) a.socket.send(payload('a', i), localPort, '127.0.0.1');
  for (let i = 1; i < 10; i++) b.socket.send(payload('b', i), localPort, '127.0.0.1');
  await a.waitFor(100);
  await b.waitFor(10);
  const sorted = (list: Buffer[]) => list.map((x) => x.toString('hex')).sort();
  t.same(sorted(a.received), sorted(Array.from({ length: 100 }, (_, i) => payload('a', i))), 'all 100 echoed intact, boundaries kept, to their sender');
  t.same(sorted(b.received), sorted(Array.from({ length: 10 }, (_, i) => payload('b', i))), "a second sender's flow gets only its own echoes");

  for (const [name, running] of [['forward', forwarding], ['expose', exposing]] as const) {
    const exited = once(running.child, 'close');
    running.child.kill('SIGINT');
    const [code] = await within(`${name} to exit`, exited, WAIT_MS);
    t.equal(code, 0, `${name} exits 0 on SIGINT`);
    if (code !== 0) t.comment(running.stderr());
    t.match(running.stdout(), new RegExp(`${name} summary: 2 flows, 110 datagrams \\(\\d+ bytes\\) to .*, 110 \\(\\d+ bytes\\) from it, 0 dropped\\n$`));
  }
});
