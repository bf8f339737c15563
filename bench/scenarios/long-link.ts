/**
 * Test 11 (issue 10): a user far from the relay. A delay-and-rate link (bench/baseline/
 * link-main.ts: `--link-delay` ms each way, `--link-rate` MB/s) sits between each client and
 * the relay; one VirtualConnection (library clients, send() → for await) must reach most of
 * what raw TCP gets over the same path: source → link → pipe proxy → link → sink, a fresh
 * connection per run for both so both start from their initial windows.
 */
import type { ServerChild } from '../lib/child.ts';
import type { ScenarioResult } from '../lib/report.ts';
import { bulkTransfer, withDeadline } from '../load/drive.ts';
import { closeFlows, openTcpFlows, startLink } from '../load/chains.ts';
import { AcceptQueue, cliShippedNodeFlags, SERVER_HOST, startProxy } from '../load/transports.ts';
import { libraryPair, sendAndIterate, timedOver, wholePatterns, API_WRITE_BYTES } from './api-bulk.ts';
import { PHASE_DEADLINE_MS, sharedRelay, userAddress, type BenchContext } from './context.ts';
import { timedRuns } from './measure.ts';

/** A virtual connection must reach this share of raw TCP over the same link (issue 10). */
export const LONG_LINK_TARGET_RATIO = 0.8;

async function stopAll(children: Array<ServerChild | undefined>): Promise<void> {
  await Promise.all(children.map((c) => c?.stop()));
}

export async function longLinkScenario(context: BenchContext): Promise<ScenarioResult> {
  const { linkDelayMs, linkRateMBps } = context.sizes;
  const bytes = wholePatterns(context.sizes.linkBytes);
  const link = { delayMs: linkDelayMs, rateMBps: linkRateMBps, nodeFlags: [...cliShippedNodeFlags(), ...(context.relay.nodeFlags ?? [])] };
  const where = `${linkDelayMs} ms + ${linkRateMBps} MB/s each way`;

  // Raw TCP: source → link → proxy → link → sink.
  const sink = new AcceptQueue();
  const sinkPort = await sink.listen();
  let far: ServerChild | undefined;
  let proxy: ServerChild | undefined;
  let near: ServerChild | undefined;
  let raw;
  try {
    far = await startLink({ host: SERVER_HOST, port: sinkPort }, link);
    proxy = await startProxy(`${far.host}:${far.port}`, link.nodeFlags);
    near = await startLink({ host: proxy.host, port: proxy.port }, link);
    const entry = { host: near.host, port: near.port };
    const processes = [
      { name: 'link 1', child: near },
      { name: 'proxy', child: proxy },
      { name: 'link 2', child: far },
    ];
    raw = await timedRuns(context, `raw TCP over the link (${where})`, processes, async () => {
      const pairs = await withDeadline(openTcpFlows(entry, sink, 1, userAddress(context)), PHASE_DEADLINE_MS, 'opening a TCP flow over the link');
      try {
        const started = process.hrtime.bigint();
        await bulkTransfer(pairs, context.pattern, bytes, API_WRITE_BYTES, PHASE_DEADLINE_MS);
        return { bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
      } finally {
        closeFlows(pairs);
      }
    });
  } finally {
    await stopAll([near, proxy, far]);
    await sink.close();
  }

  // AlphaNET: both library clients reach the relay through the link (each connection its own).
  const relay = await sharedRelay(context);
  const relayLink = await startLink(relay.relay, link);
  let alphanet;
  try {
    const pairs = await libraryPair({ host: relayLink.host, port: relayLink.port }, [userAddress(context), userAddress(context)], 7200);
    try {
      const processes = [
        { name: 'link', child: relayLink },
        { name: 'relay', child: relay.relay.child },
      ];
      alphanet = await timedRuns(context, `VirtualConnection over the link (${where})`, processes, () =>
        timedOver(pairs, bytes, (a, b) => sendAndIterate(a, b, context.pattern, bytes), 'transfer over the long link'),
      );
    } finally {
      await pairs.close();
    }
  } finally {
    await relayLink.stop();
  }
  const name = '11 long link';
  return {
    name,
    rows: [
      {
        test: name,
        metric: `throughput, 1 connection, ${where}`,
        unit: 'MB/s',
        alphanet: alphanet.mbps,
        baselineName: 'raw TCP',
        baseline: raw.mbps,
        comparison: 'ratio',
        target: `≥ ${LONG_LINK_TARGET_RATIO.toFixed(2)}× raw TCP`,
        met: alphanet.mbps >= LONG_LINK_TARGET_RATIO * raw.mbps,
      },
    ],
    details: { bytesPerRun: bytes, linkDelayMs, linkRateMBps, raw, alphanet },
  };
}
