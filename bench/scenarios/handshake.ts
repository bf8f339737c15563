/**
 * Test 4 of issue 6: virtual connects per second with many in flight (status request →
 * connection request → accept), and the time each takes. The baseline is the plain proxy
 * doing the nearest equivalent: a TCP connect through it plus one byte echoed back, so a
 * connection that is proven to carry data.
 */
import net from 'node:net';
import { once } from 'node:events';
import { AddressBlock, sourceAddress } from '../lib/addresses.ts';
import type { ScenarioResult } from '../lib/report.ts';
import { percentile } from '../lib/stats.ts';
import { withDeadline } from '../load/drive.ts';
import { RelayProcess, SERVER_HOST, startProxy, LISTEN_PORT } from '../load/transports.ts';
import type { RawClient } from '../load/raw-client.ts';
import { PHASE_DEADLINE_MS, type BenchContext } from './context.ts';
import { e2eHandshakeRows } from './e2e-handshake.ts';

/** Target connects per second (issue 6). */
export const CONNECTS_PER_SECOND_TARGET = 2000;
/** Client connections making and taking the connects on each side. */
const CLIENTS_PER_SIDE = 10;
/** Source addresses the TCP baseline spreads its connects over (ephemeral ports per address). */
const BASELINE_SOURCES = 16;

export interface ConnectFigures {
  perSecond: number;
  p50: number;
  p99: number;
  count: number;
}

/** Runs `total` timed operations with `concurrency` in flight. */
export async function timedLoop(total: number, concurrency: number, operation: (slot: number) => Promise<void>): Promise<ConnectFigures> {
  const samples = new Float64Array(total);
  let started = 0;
  let done = 0;
  const start = performance.now();
  const slot = async (s: number): Promise<void> => {
    while (started < total) {
      started++;
      const t0 = performance.now();
      await operation(s);
      samples[done++] = performance.now() - t0;
    }
  };
  await withDeadline(
    Promise.all(Array.from({ length: Math.min(concurrency, total) }, (_, s) => slot(s))),
    PHASE_DEADLINE_MS,
    `${total} connects`,
  );
  const seconds = (performance.now() - start) / 1000;
  return { perSecond: done / seconds, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), count: done };
}

async function proxyConnects(context: BenchContext): Promise<ConnectFigures> {
  const echo = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  echo.listen({ host: SERVER_HOST, port: 0, backlog: 4096 });
  await once(echo, 'listening');
  const proxy = await startProxy(`${SERVER_HOST}:${(echo.address() as net.AddressInfo).port}`);
  const one = Buffer.from([0x2a]);
  const connectOnce = async (slot: number): Promise<void> => {
    const socket = net.connect({ host: SERVER_HOST, port: proxy.port, localAddress: sourceAddress(AddressBlock.handshake, slot % BASELINE_SOURCES), noDelay: true });
    try {
      socket.write(one);
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      if (chunk[0] !== 0x2a) throw new Error('echo returned the wrong byte');
    } finally {
      socket.destroy();
    }
  };
  try {
    const { concurrentConnects, totalConnects } = context.sizes;
    await timedLoop(Math.min(concurrentConnects, totalConnects), concurrentConnects, connectOnce);
    return await timedLoop(totalConnects, concurrentConnects, connectOnce);
  } finally {
    await proxy.stop();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  }
}

async function relayConnects(context: BenchContext): Promise<ConnectFigures> {
  const relay = await RelayProcess.start(context.relay);
  const clients: RawClient[] = [];
  try {
    const listeners: RawClient[] = [];
    const connectors: RawClient[] = [];
    for (let i = 0; i < CLIENTS_PER_SIDE; i++) {
      const listener = await relay.connect(sourceAddress(AddressBlock.handshake, 2 * i + 1));
      await listener.listen(LISTEN_PORT);
      const connector = await relay.connect(sourceAddress(AddressBlock.handshake, 2 * i));
      listeners.push(listener);
      connectors.push(connector);
      clients.push(listener, connector);
    }
    const { concurrentConnects, totalConnects } = context.sizes;
    // Each slot binds its source port once, as a client that reconnects would.
    const ports = await Promise.all(
      Array.from({ length: concurrentConnects }, (_, s) => connectors[s % CLIENTS_PER_SIDE].bind(0)),
    );
    const connectOnce = async (slot: number): Promise<void> => {
      const connector = connectors[slot % CLIENTS_PER_SIDE];
      const target = listeners[(slot + 1) % CLIENTS_PER_SIDE];
      const connection = await connector.open(ports[slot], { ip: target.virtualIp, port: LISTEN_PORT });
      connection.close();
    };
    await timedLoop(Math.min(concurrentConnects, totalConnects), concurrentConnects, connectOnce);
    return await timedLoop(totalConnects, concurrentConnects, connectOnce);
  } finally {
    for (const client of clients) client.close();
    await relay.stop();
  }
}

export async function handshakeScenario(context: BenchContext): Promise<ScenarioResult> {
  const proxy = await proxyConnects(context);
  context.log(`  proxy: ${proxy.perSecond.toFixed(0)}/s, p50 ${proxy.p50.toFixed(2)} ms, p99 ${proxy.p99.toFixed(2)} ms`);
  const relay = await relayConnects(context);
  context.log(`  relay: ${relay.perSecond.toFixed(0)}/s, p50 ${relay.p50.toFixed(2)} ms, p99 ${relay.p99.toFixed(2)} ms`);
  const name = '4 handshakes';
  const concurrency = context.sizes.concurrentConnects;
  // Issue 12: connects between library clients with and without the end-to-end handshake.
  const e2e = await e2eHandshakeRows(context, name);
  return {
    name,
    rows: [
      {
        test: name,
        metric: `connects/s, ${concurrency} in flight`,
        unit: '/s',
        alphanet: relay.perSecond,
        baselineName: 'proxy',
        baseline: proxy.perSecond,
        comparison: 'ratio',
        target: `≥ ${CONNECTS_PER_SECOND_TARGET}/s`,
        met: relay.perSecond >= CONNECTS_PER_SECOND_TARGET,
      },
      { test: name, metric: 'handshake p50', unit: 'ms', alphanet: relay.p50, baselineName: 'proxy', baseline: proxy.p50, comparison: 'added', target: '', met: undefined },
      { test: name, metric: 'handshake p99', unit: 'ms', alphanet: relay.p99, baselineName: 'proxy', baseline: proxy.p99, comparison: 'added', target: '', met: undefined },
      ...e2e.rows,
    ],
    details: { concurrency, total: context.sizes.totalConnects, clientsPerSide: CLIENTS_PER_SIDE, proxy, relay, e2e: e2e.details },
  };
}
