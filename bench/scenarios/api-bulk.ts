/**
 * Test 8 (issue 10): the client library's own data path. `--size-user` MiB through one
 * VirtualConnection, `send()` at one end and async iteration at the other, then the same through
 * `duplex()` piped at both ends; both clients are the library (actors/client) in this process,
 * against the relay of test 1 with its raw-codec clients in the same run.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect, generateIdentity, type Client, type ConnectOptions, type VirtualConnection, type VirtualSocket } from '../../actors/client/index.ts';
import { perProcessRows, type Row, type ScenarioResult } from '../lib/report.ts';
import { KIB } from '../lib/stats.ts';
import { BenchIntegrityError, bulkTransfer, matchesPattern, PATTERN_BYTES, withDeadline, type TransferResult } from '../load/drive.ts';
import { median, PHASE_DEADLINE_MS, sharedRelay, userAddress, withPairs, type BenchContext } from './context.ts';
import { timedRuns, type Measured, type RunFigures } from './measure.ts';
import { aeadAloneRuns } from './e2e-aead-alone.ts';
import { benchClient, sendToSink, startPeer, type Peer } from './peer-process.ts';

/** Write size, as in test 1. */
export const API_WRITE_BYTES = 64 * KIB;
/** The library must reach this share of the raw-client relay path (issue 10). */
export const API_TARGET_RATIO = 0.8;
/** End-to-end encryption must keep this share of the plaintext throughput (issue 12, part 4). */
export const E2E_TARGET_RATIO = 0.7;
/** Virtual port the receiving client listens on. */
const API_PORT = 7100;
const WARMUP_FRACTION = 0.125;

/** Bytes rounded down to whole patterns (at least one). */
export function wholePatterns(bytes: number): number {
  return Math.max(PATTERN_BYTES, Math.floor(bytes / PATTERN_BYTES) * PATTERN_BYTES);
}

/** A checker for one stream: throws unless the chunks are the pattern from offset 0 on. */
export function patternChecker(pattern: Buffer, label: string): { check(chunk: Uint8Array): void; readonly position: number } {
  let position = 0;
  return {
    check(chunk) {
      const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (!matchesPattern(pattern, view, position)) {
        throw new BenchIntegrityError('ERR_BENCH_CORRUPT', `${label}: bytes at offset ${position} differ from those sent`);
      }
      position += chunk.byteLength;
    },
    get position() {
      return position;
    },
  };
}

function checkLength(label: string, got: number, sent: number): void {
  if (got !== sent) throw new BenchIntegrityError('ERR_BENCH_CORRUPT', `${label}: ${got} bytes arrived, ${sent} were sent`);
}

/** send() in 64 KiB calls at `a`, then end(); `for await` at `b` to the end. */
export async function sendAndIterate(a: VirtualConnection, b: VirtualConnection, pattern: Buffer, bytes: number): Promise<void> {
  const receive = (async () => {
    const checker = patternChecker(pattern, 'send()/for await');
    for await (const chunk of b) checker.check(chunk);
    checkLength('send()/for await', checker.position, bytes);
  })();
  const send = (async () => {
    for (let sent = 0; sent < bytes; sent += API_WRITE_BYTES) await a.send(pattern.subarray(sent % PATTERN_BYTES, (sent % PATTERN_BYTES) + API_WRITE_BYTES));
    await a.end();
  })();
  await Promise.all([send, receive]);
  await b.end();
}

/** A Readable of `bytes` of the pattern in 64 KiB chunks, piped into `a.duplex()`; `b.duplex()` piped into a checker. */
export async function pipeDuplexes(a: VirtualConnection, b: VirtualConnection, pattern: Buffer, bytes: number): Promise<void> {
  let sent = 0;
  const source = new Readable({
    read() {
      while (sent < bytes) {
        const at = sent % PATTERN_BYTES;
        sent += API_WRITE_BYTES;
        if (!this.push(pattern.subarray(at, at + API_WRITE_BYTES))) return;
      }
      this.push(null);
    },
  });
  const checker = patternChecker(pattern, 'duplex() piped');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      try {
        checker.check(chunk);
        callback();
      } catch (error) {
        callback(error as Error);
      }
    },
  });
  const aDuplex = a.duplex();
  const bDuplex = b.duplex();
  // Nothing flows back: end b's writable side at once, and let a's readable side run to that end.
  bDuplex.end();
  aDuplex.resume();
  await Promise.all([pipeline(source, aDuplex), pipeline(bDuplex, sink)]);
  checkLength('duplex() piped', checker.position, bytes);
}

/**
 * Two library clients on `relay`, the second listening; `pair()` opens a fresh connection. With
 * `e2e` false (the figures comparable with every bench before end-to-end encryption) the clients
 * prove no identity and move plaintext; with it, each has a key made in memory and every
 * connection is encrypted end to end (Noise IK, docs/SECURITY.md).
 */
export async function libraryPair(
  relay: { host: string; port: number },
  addresses: [string, string],
  port = API_PORT,
  e2e = false,
): Promise<{ pair(): Promise<[VirtualConnection, VirtualConnection]>; close(): Promise<void> }> {
  const identity = (): ConnectOptions => (e2e ? { identity: generateIdentity(), e2e: true } : { identity: false });
  const sender: Client = await connect({ host: relay.host, port: relay.port, localAddress: addresses[0], ...identity() });
  let receiver: Client | undefined;
  let listener: VirtualSocket;
  try {
    receiver = await connect({ host: relay.host, port: relay.port, localAddress: addresses[1], ...identity() });
    listener = await receiver.listen(port);
  } catch (error) {
    await sender.close();
    await receiver?.close();
    throw error;
  }
  const target = { address: receiver.virtualIp, port };
  return {
    async pair() {
      const accepted = listener.accept();
      const a = await sender.connect(target);
      return [a, await accepted];
    },
    async close() {
      await Promise.all([sender.close(), receiver!.close()]);
    },
  };
}

/** One timed transfer of `bytes` over a fresh connection. */
export async function timedOver(
  pairs: { pair(): Promise<[VirtualConnection, VirtualConnection]> },
  bytes: number,
  move: (a: VirtualConnection, b: VirtualConnection) => Promise<void>,
  what: string,
): Promise<TransferResult> {
  const [a, b] = await pairs.pair();
  const start = process.hrtime.bigint();
  try {
    await withDeadline(move(a, b), PHASE_DEADLINE_MS, what);
  } finally {
    a.close();
    b.close();
  }
  return { bytes, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

export async function apiBulkScenario(context: BenchContext): Promise<ScenarioResult> {
  const bytes = wholePatterns(context.sizes.userPathBytes);
  const warmup = wholePatterns(bytes * WARMUP_FRACTION);
  const transport = await sharedRelay(context);
  const relay: Measured = { name: 'relay', child: transport.relay.child };
  const raw = await withPairs(context, 'relay', 1, async (pairs) => {
    await bulkTransfer(pairs, context.pattern, warmup, API_WRITE_BYTES, PHASE_DEADLINE_MS);
    return timedRuns(context, 'raw clients', [relay], () => bulkTransfer(pairs, context.pattern, bytes, API_WRITE_BYTES, PHASE_DEADLINE_MS));
  });
  const library = await libraryPair(transport.relay, [userAddress(context), userAddress(context)]);
  try {
    const modes = {
      send: (a: VirtualConnection, b: VirtualConnection, n: number) => sendAndIterate(a, b, context.pattern, n),
      duplex: (a: VirtualConnection, b: VirtualConnection, n: number) => pipeDuplexes(a, b, context.pattern, n),
    };
    const figures: Record<string, Awaited<ReturnType<typeof timedRuns>>> = {};
    for (const [mode, move] of Object.entries(modes)) {
      await timedOver(library, warmup, (a, b) => move(a, b, warmup), `${mode} warm-up`);
      figures[mode] = await timedRuns(context, mode === 'send' ? 'send() → for await' : 'duplex() piped', [relay], () =>
        timedOver(library, bytes, (a, b) => move(a, b, bytes), `${mode} transfer`),
      );
    }
    // The same send() path with end-to-end encryption, in the same run: what Noise e2e costs. Its
    // runs alternate with plaintext runs, so both see the same share of a busy machine.
    const secure = await libraryPair(transport.relay, [userAddress(context), userAddress(context)], API_PORT + 1, true);
    try {
      await timedOver(secure, warmup, (a, b) => modes.send(a, b, warmup), 'e2e warm-up');
      [figures.e2ePlain, figures.e2e] = await alternatingRuns(
        context,
        ['send() → for await, plaintext (alternating with e2e)', 'send() → for await, e2e'],
        [[relay], [relay]],
        [() => timedOver(library, bytes, (a, b) => modes.send(a, b, bytes), 'send transfer'), () => timedOver(secure, bytes, (a, b) => modes.send(a, b, bytes), 'e2e transfer')],
      );
    } finally {
      await secure.close();
    }
    // The same again with each end in its own process, as on two hosts: the receiver is a library
    // client in a peer process (bench/load/peer.ts), the sender stays here.
    const apart = await twoProcessRuns(context, transport.relay, relay, bytes, warmup);
    // The transport's AEAD alone, seal and open of the same bytes in this thread (no relay, no
    // connection): the floor under the e2e line's cost on this machine.
    const alone = await aeadAloneRuns(context, bytes, API_WRITE_BYTES);
    const name = '8 API bulk';
    const row = (metric: string, mbps: number) => ({
      test: name,
      metric,
      unit: 'MB/s',
      alphanet: mbps,
      baselineName: 'raw clients',
      baseline: raw.mbps,
      comparison: 'ratio' as const,
      target: `≥ ${API_TARGET_RATIO.toFixed(2)}× raw clients`,
      met: mbps >= API_TARGET_RATIO * raw.mbps,
    });
    return {
      name,
      rows: [
        row('send() → for await, 1 connection', figures.send.mbps),
        row('duplex() piped, 1 connection', figures.duplex.mbps),
        ...e2eRows(name, figures.e2e, figures.e2ePlain, alone),
        ...twoProcessRows(name, apart.e2e, apart.plain),
      ],
      details: {
        bytesPerRun: bytes,
        writeBytes: API_WRITE_BYTES,
        raw,
        send: figures.send,
        duplex: figures.duplex,
        e2e: figures.e2e,
        e2ePlaintext: figures.e2ePlain,
        aeadAlone: alone,
        e2eTwoProcesses: apart.e2e,
        plaintextTwoProcesses: apart.plain,
      },
    };
  } finally {
    await library.close();
  }
}

/**
 * send() from a library client here to one in a peer process, plaintext and e2e alternating
 * (bench/scenarios/peer-process.ts): each end's work on its own process, as between two hosts.
 */
async function twoProcessRuns(context: BenchContext, relay: { host: string; port: number }, relayCpu: Measured, bytes: number, warmup: number): Promise<{ plain: RunFigures; e2e: RunFigures }> {
  const started: Array<{ client: Client; peer: Peer }> = [];
  try {
    for (const e2e of [false, true]) {
      const peer = await startPeer(context, relay, { name: e2e ? 'e2e peer' : 'plaintext peer', localAddress: userAddress(context), port: API_PORT + 2, mode: 'sink', e2e });
      try {
        started.push({ client: await benchClient(relay, userAddress(context), e2e), peer });
      } catch (error) {
        await peer.stop();
        throw error;
      }
    }
    const measured = started.map(({ peer }): Measured[] => [relayCpu, { name: 'peer', child: peer.child }]);
    const transfer = (k: number, n: number) => () => withDeadline(sendToSink(started[k].client, started[k].peer, context.pattern, n, API_WRITE_BYTES), PHASE_DEADLINE_MS, 'transfer to a peer process');
    for (const k of [0, 1]) await transfer(k, warmup)();
    const [plain, e2e] = await alternatingRuns(
      context,
      ['send() → peer process, plaintext (alternating with e2e)', 'send() → peer process, e2e'],
      [measured[0], measured[1]],
      [transfer(0, bytes), transfer(1, bytes)],
    );
    return { plain, e2e };
  } finally {
    await Promise.all(
      started.map(async ({ client, peer }) => {
        try {
          await client.close();
        } finally {
          await peer.stop();
        }
      }),
    );
  }
}

/**
 * Runs two transfers one after the other, `runs` times each (a, b, a, b, …), and returns each
 * one's figures as {@link timedRuns} would: on a shared machine both then see the same load, so
 * their ratio is the transfers', not the scheduler's. The CPU per GB is the mean over the runs
 * (every run moves the same bytes).
 */
async function alternatingRuns(
  context: BenchContext,
  labels: [string, string],
  processes: [readonly Measured[], readonly Measured[]],
  transfers: [() => Promise<TransferResult>, () => Promise<TransferResult>],
): Promise<[RunFigures, RunFigures]> {
  const once: BenchContext = { ...context, sizes: { ...context.sizes, runs: 1 } };
  const runs: [RunFigures[], RunFigures[]] = [[], []];
  for (let i = 0; i < context.sizes.runs; i++) {
    for (const k of [0, 1] as const) runs[k].push(await timedRuns(once, `${labels[k]}, run ${i + 1}`, processes[k], transfers[k]));
  }
  const merge = (figures: RunFigures[]): RunFigures => {
    const mean = (pick: (f: RunFigures) => Record<string, number>): Record<string, number> =>
      Object.fromEntries(Object.keys(pick(figures[0])).map((name) => [name, figures.reduce((sum, f) => sum + pick(f)[name], 0) / figures.length]));
    const runsMBps = figures.flatMap((f) => f.runsMBps);
    return { mbps: median(runsMBps), runsMBps, cpuSecondsPerGb: mean((f) => f.cpuSecondsPerGb), cpuShare: mean((f) => f.cpuShare) };
  };
  return [merge(runs[0]), merge(runs[1])];
}

/** An e2e throughput line against the plaintext runs alternating with it, with issue 12's target. */
function e2eTargetRow(test: string, metric: string, e2e: RunFigures, plain: RunFigures): Row {
  return {
    test,
    metric,
    unit: 'MB/s',
    alphanet: e2e.mbps,
    baselineName: 'plaintext, alternating',
    baseline: plain.mbps,
    comparison: 'ratio',
    target: `≥ ${E2E_TARGET_RATIO.toFixed(2)}× plaintext`,
    met: e2e.mbps >= E2E_TARGET_RATIO * plain.mbps,
  };
}

/**
 * The e2e line with each end in its own process, against plaintext the same way (issue 12's
 * target), and the CPU per GB of each process.
 */
function twoProcessRows(test: string, e2e: RunFigures, plain: RunFigures): Row[] {
  return [
    e2eTargetRow(test, 'send() → peer process, e2e (Noise), 1 connection', e2e, plain),
    ...perProcessRows(
      test,
      [['bench', 'bench process (sender)'], ['peer', 'peer process (receiver)'], ['relay', 'relay']],
      (label) => `e2e CPU per GB, two processes, ${label}`,
      'CPU-s/GB',
      e2e.cpuSecondsPerGb,
      'plaintext',
      plain.cpuSecondsPerGb,
    ),
  ];
}

/**
 * The e2e line against plaintext (issue 12's target), the CPU per GB of each process for both,
 * and the transport's AEAD alone beside them. Both library clients run in the bench process, so its CPU
 * counts both ends' encryption.
 */
function e2eRows(test: string, e2e: RunFigures, plain: RunFigures, alone: RunFigures): Row[] {
  // Both ends' sealing and opening share this one thread, and the AEAD alone (the row below)
  // costs more than the plaintext line leaves room for at 0.70×: the target is the two-process
  // line's, where each end encrypts on its own CPU as between two hosts (docs/BENCHMARKS.md).
  const rows: Row[] = [{ ...e2eTargetRow(test, 'send() → for await, e2e (Noise), both ends in the bench process', e2e, plain), target: '', met: undefined }];
  rows.push(
    ...perProcessRows(test, [['bench', 'bench process (both clients)'], ['relay', 'relay']], (label) => `e2e CPU per GB, ${label}`, 'CPU-s/GB', e2e.cpuSecondsPerGb, 'plaintext', plain.cpuSecondsPerGb),
  );
  rows.push({
    test,
    metric: 'AEAD alone: seal and open of the same bytes, one thread',
    unit: 'CPU-s/GB',
    alphanet: alone.cpuSecondsPerGb.bench,
    baselineName: 'e2e line, bench',
    baseline: e2e.cpuSecondsPerGb.bench,
    comparison: 'ratio',
    target: '',
    met: undefined,
  });
  return rows;
}
