/**
 * Test 12 (issue 14): UDP through the datagram tunnels as a user runs them (generator →
 * `alphanet forward --udp` → relay → `alphanet expose --udp` → sink, each its own process) against
 * direct UDP to the same sink in the same run: datagrams per second delivered and loss at a fixed
 * offered rate. For games the rate is fixed and loss is the figure: a late packet is dropped, not
 * queued, so the tunnel shows its cost as loss, never as a growing backlog.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { Row, ScenarioResult } from '../lib/report.ts';
import { ServerChild } from '../lib/child.ts';
import { cliShippedNodeFlags } from '../load/transports.ts';
import { BenchIntegrityError } from '../load/drive.ts';
import { sharedRelay, userAddress, type BenchContext } from './context.ts';

/** Virtual datagram port the expose process serves. */
export const UDP_VIRTUAL_PORT = 7777;
/** The tunnel must deliver this share of what direct UDP delivers at the offered rate. */
export const UDP_TARGET_RATIO = 0.95;
/** Loss the tunnel may add over direct UDP, in percent. */
export const UDP_ADDED_LOSS_TARGET_PERCENT = 1;
/**
 * After the last send the sink counts until all have come or nothing has come for this long: on a
 * busy machine the bench process itself may not be scheduled for a few hundred ms, and datagrams
 * still in its socket buffer then are late, not lost.
 */
const QUIET_MS = 1000;
/** Datagrams sent (and not counted) before measuring, so each flow is open. */
const WARMUP_DATAGRAMS = 20;
/** Sequence numbers of warm-up datagrams start here: the sink tells them apart however late they come. */
const WARMUP_SEQUENCE = 0x40000000;

interface UdpFigure {
  offered: number;
  sent: number;
  received: number;
  corrupt: number;
  /** Datagrams delivered per second of the sending phase. */
  pps: number;
  lossPercent: number;
}

/** A UDP sink on loopback that counts datagrams of the expected size and checks their contents. */
async function startSink(
  payloadBytes: number,
): Promise<{ port: number; count: () => { received: number; corrupt: number }; warmedUp: () => number; reset: () => void; lastAt: () => number; close: () => void }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  // A large receive buffer, as a game server would set: the figure is the path's, not the sink's.
  socket.setRecvBufferSize(4 * 1024 * 1024);
  let received = 0;
  let corrupt = 0;
  let warm = 0;
  let lastAt = 0;
  socket.on('message', (bytes) => {
    lastAt = performance.now();
    // Byte i of datagram n is (n + i) & 0xff after its 4-byte sequence number.
    const n = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
    if (bytes.length !== payloadBytes || bytes[4] !== ((n + 4) & 0xff) || bytes[payloadBytes - 1] !== ((n + payloadBytes - 1) & 0xff)) corrupt++;
    else if (n >= WARMUP_SEQUENCE) warm++;
    else received++;
  });
  return {
    port: socket.address().port,
    count: () => ({ received, corrupt }),
    warmedUp: () => warm,
    reset: () => {
      received = 0;
      corrupt = 0;
    },
    lastAt: () => lastAt,
    close: () => socket.close(),
  };
}

function datagram(n: number, bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  b.writeUInt32BE(n >>> 0, 0);
  for (let i = 4; i < bytes; i++) b[i] = (n + i) & 0xff;
  return b;
}

/** Sends `rate` datagrams a second for `durationMs` to `port` (paced per millisecond), then waits for the sink to go quiet. */
async function offer(
  sink: Awaited<ReturnType<typeof startSink>>,
  port: number,
  rate: number,
  payloadBytes: number,
  durationMs: number,
): Promise<UdpFigure> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  socket.setSendBufferSize(4 * 1024 * 1024);
  // The same 64 datagrams over and over: the generator's cost stays out of the figure.
  const prepared = Array.from({ length: 64 }, (_, i) => datagram(i, payloadBytes));
  try {
    const warmStart = sink.warmedUp();
    for (let i = 0; i < WARMUP_DATAGRAMS; i++) socket.send(datagram(WARMUP_SEQUENCE + i, payloadBytes), port, '127.0.0.1');
    await waitFor(() => sink.warmedUp() - warmStart >= WARMUP_DATAGRAMS, 10_000);
    sink.reset();
    let sent = 0;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const elapsed = Math.min(performance.now() - started, durationMs);
        const due = Math.floor((elapsed * rate) / 1000);
        for (; sent < due; sent++) socket.send(prepared[sent % 64], port, '127.0.0.1');
        if (elapsed >= durationMs) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    await waitQuiet(sink, sent, 10_000);
    const { received, corrupt } = sink.count();
    if (corrupt > 0) throw new BenchIntegrityError('ERR_BENCH_CORRUPT', `${corrupt} datagrams arrived changed`);
    return { offered: rate, sent, received, corrupt, pps: (received * 1000) / durationMs, lossPercent: sent === 0 ? 0 : (100 * (sent - received)) / sent };
  } finally {
    socket.close();
  }
}

/** Resolves once `done()` is true, or after `limitMs` (a flow that lost a warm-up datagram still runs). */
async function waitFor(done: () => boolean, limitMs: number): Promise<void> {
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (done() || performance.now() - started >= limitMs) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
}

/** Resolves once the sink has `expected` datagrams or has received nothing for QUIET_MS (at most `limitMs`). */
async function waitQuiet(sink: Awaited<ReturnType<typeof startSink>>, expected: number, limitMs: number): Promise<void> {
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const { received, corrupt } = sink.count();
      if (received + corrupt >= expected || now - Math.max(sink.lastAt(), started) >= QUIET_MS || now - started >= limitMs) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
  });
}

/** expose --udp in front of the sink and forward --udp in front of it, on the shared relay. */
async function startUdpTunnel(context: BenchContext, sinkPort: number): Promise<{ entryPort: number; stop: () => Promise<void> }> {
  const relay = (await sharedRelay(context)).relay;
  const where = `${relay.host}:${relay.port}`;
  const nodeFlags = [...cliShippedNodeFlags(), ...(context.relay.nodeFlags ?? [])];
  const expose = await ServerChild.start({
    name: 'alphanet expose --udp',
    args: ['cli/alphanet.ts', 'expose', '--udp', String(UDP_VIRTUAL_PORT), `127.0.0.1:${sinkPort}`, '--relay', where, '--local-address', userAddress(context), '--plaintext'],
    nodeFlags,
    ready: /exposing udp (\S+):(\d+) ->/,
  });
  try {
    const forward = await ServerChild.start({
      name: 'alphanet forward --udp',
      args: ['cli/alphanet.ts', 'forward', '--udp', '0', `${expose.host}:${expose.port}`, '--relay', where, '--local-address', userAddress(context), '--plaintext'],
      nodeFlags,
      ready: /forwarding udp (\S+):(\d+) ->/,
    });
    return { entryPort: forward.port, stop: () => Promise.all([forward.stop(), expose.stop()]).then(() => {}) };
  } catch (error) {
    await expose.stop();
    throw error;
  }
}

export async function udpScenario(context: BenchContext): Promise<ScenarioResult> {
  const { udpRate: rate, udpPayloadBytes: bytes, durationMs } = context.sizes;
  const sink = await startSink(bytes);
  try {
    context.log(`  direct UDP: ${rate} datagrams/s of ${bytes} B for ${durationMs} ms`);
    const direct = await offer(sink, sink.port, rate, bytes, durationMs);
    context.log(`    ${direct.received}/${direct.sent} delivered, ${direct.lossPercent.toFixed(2)} % lost`);
    const tunnel = await startUdpTunnel(context, sink.port);
    let through: UdpFigure;
    try {
      context.log('  forward --udp → relay → expose --udp');
      through = await offer(sink, tunnel.entryPort, rate, bytes, durationMs);
      context.log(`    ${through.received}/${through.sent} delivered, ${through.lossPercent.toFixed(2)} % lost`);
    } finally {
      await tunnel.stop();
    }
    const name = '12 udp';
    const rows: Row[] = [
      {
        test: name,
        metric: `datagrams/s at ${rate}/s offered (${bytes} B)`,
        unit: 'pkt/s',
        alphanet: through.pps,
        baselineName: 'direct UDP',
        baseline: direct.pps,
        comparison: 'ratio',
        target: `≥ ${UDP_TARGET_RATIO.toFixed(2)}× direct`,
        met: through.pps >= UDP_TARGET_RATIO * direct.pps,
      },
      {
        test: name,
        metric: `loss at ${rate}/s offered`,
        unit: '%',
        alphanet: through.lossPercent,
        baselineName: 'direct UDP',
        baseline: direct.lossPercent,
        comparison: 'added',
        target: `≤ +${UDP_ADDED_LOSS_TARGET_PERCENT} %`,
        met: through.lossPercent - direct.lossPercent <= UDP_ADDED_LOSS_TARGET_PERCENT,
      },
    ];
    return { name, rows, details: { rate, payloadBytes: bytes, durationMs, direct, tunnel: through } };
  } finally {
    sink.close();
  }
}
