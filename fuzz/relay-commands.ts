/**
 * Runs the stateful relay fuzz's commands (relay-command-data.ts): each is sent by a
 * raw-protocol client of the harness, and everything every client receives because of it is
 * checked against what the model predicts.
 */
import {
  CloseReason,
  ConnectionStatus,
  PacketType,
  SocketStatus,
  encodeArbitraryData,
  encodePacket,
  type Packet,
  type WireAddress,
} from '../protocol/index.ts';
import { concatBytes, seededBytes, splitAt } from './bytes.ts';
import { helloBytes, malformed } from './relay-bad-frames.ts';
import { FIXED_PORTS, isSimple, type CommandData, type PairChoice, type PortChoice, type SimpleCommandData } from './relay-command-data.ts';
import { ModelMismatch, type RelayHarness } from './relay-harness.ts';
import { SLOT_COUNT, type Expectation, type ModelPair, type RelayModel } from './relay-model.ts';

// ---------------------------------------------------------------------- resolving choices

function pick<T>(list: readonly T[], i: number): T | undefined {
  return list.length === 0 ? undefined : list[i % list.length];
}

function resolvePort(m: RelayModel, self: number, target: number, choice: PortChoice | { from: 'zero' }): number {
  switch (choice.from) {
    case 'zero':
      return 0;
    case 'held':
      return pick([...m.slots[self].ports], choice.i) ?? FIXED_PORTS[choice.i % FIXED_PORTS.length];
    case 'target':
      return (target >= 0 ? pick([...m.slots[target].ports], choice.i) : undefined) ?? FIXED_PORTS[choice.i % FIXED_PORTS.length];
    case 'fixed':
      return FIXED_PORTS[choice.i % FIXED_PORTS.length];
    case 'random':
      return choice.port;
  }
}

/**
 * A command about "one of my pairs" from a client with no open pair first opens one (to another
 * slot), so data, window, end and close commands mostly exercise a live pair.
 */
async function ensureOwnPair(h: RelayHarness, s: number, choice: PairChoice): Promise<void> {
  const m = h.model;
  if (choice.from !== 'own' || m.pairsOf(s).some((x) => x.state !== 'requested')) return;
  await runCommand(h, { kind: 'openPair', slot: s, target: (s + 1 + (choice.i % (SLOT_COUNT - 1))) % SLOT_COUNT, i: choice.i });
}

function resolvePair(m: RelayModel, self: number, choice: PairChoice): { id: number; pair: ModelPair | undefined } {
  if (choice.from === 'random') return { id: choice.id, pair: undefined };
  const list = choice.from === 'own' ? m.pairsOf(self).filter((x) => x.state !== 'requested') : m.pairs;
  const pair = pick(list, choice.i);
  // With no pair to name, a made-up id: the relay must refuse it all the same.
  return { id: pair?.id ?? (0x7f000000 + choice.i) >>> 0, pair };
}

// ---------------------------------------------------------------------- running

/** Sends a frame-sized request and checks its effects: the common shape of most commands. */
async function exchange(h: RelayHarness, from: number, bytes: readonly Uint8Array[], expected: Expectation[]): Promise<void> {
  h.write(from, bytes);
  await h.barrier(from);
  h.verify(expected);
}

/** The end of a slot's connection, by its own doing (`bytes`) or by vanishing; checks the fallout. */
async function endConnection(h: RelayHarness, s: number, bytes: Uint8Array | undefined, code: number | undefined, vanish: boolean): Promise<void> {
  const m = h.model;
  const client = h.client(s);
  const expected: Expectation[] = code === undefined ? [] : [m.fatal(s, code)];
  if (bytes !== undefined) h.write(s, [bytes]);
  if (vanish) client.socket.destroy();
  expected.push(...m.released(s));
  h.clients[s] = undefined;
  await h.awaitRelease(s, client);
  await h.barrier(undefined);
  h.verify(expected, new Map([[s, client]]));
}

/** Tags expectations with the frame that causes them, so verify() holds them to that order. */
function inOrder(from: number, lists: readonly Expectation[][]): Expectation[] {
  return lists.flatMap((list, i) => list.map((e) => ({ ...e, seq: from + i })));
}

/**
 * The bytes a simple command sends and what every client must receive because of them; the
 * model moves on as if they were sent. `seq` numbers the frames for verify()'s ordering.
 */
function plan(m: RelayModel, s: number, c: SimpleCommandData, seq: number): { bytes: Uint8Array[]; expected: Expectation[]; frames: number } {
  const one = (packet: Packet, expected: Expectation[]) => ({ bytes: [encodePacket(packet)], expected: inOrder(seq, [expected]), frames: 1 });
  switch (c.kind) {
    case 'bind': {
      const port = resolvePort(m, s, -1, c.port);
      const requestId = m.newRequestId();
      return one({ type: PacketType.BindRequest, requestId, port }, m.bind(s, requestId, port));
    }
    case 'unbind': {
      const port = resolvePort(m, s, -1, c.port);
      return one({ type: PacketType.Unbind, port }, m.unbind(s, port));
    }
    case 'status':
    case 'connect': {
      const targetIp = c.target >= 0 ? m.ipOf.get(m.hostOf(c.target)) : undefined;
      const destination: WireAddress = { ip: targetIp ?? c.otherIp, port: resolvePort(m, s, c.target, c.port) };
      const source: WireAddress = { ip: c.claimedIp, port: resolvePort(m, s, -1, c.source) };
      const requestId = m.newRequestId();
      if (c.kind === 'status') {
        return one({ type: PacketType.SocketStatusRequest, requestId, source, destination }, m.statusRequest(s, requestId, source, destination));
      }
      return one(
        { type: PacketType.SocketConnectionRequest, requestId, connectionId: c.connectionId, source, destination },
        m.connectRequest(s, requestId, source, destination),
      );
    }
    case 'answerStatus': {
      const mine = m.statuses.filter((x) => x.target === s);
      const entry = c.spoof === 'otherSlot' ? pick(m.statuses.filter((x) => x.target !== s), c.i) : pick(mine, c.i);
      // >>> 0: in a batch, an id the relay has not told yet (-1 in the model) goes out as 2^32-1.
      const relayId = (c.spoof === 'unknownId' || entry === undefined ? c.unknownId : entry.relayId) >>> 0;
      return one({ type: PacketType.SocketStatusResponse, requestId: relayId, status: c.status }, m.statusResponse(s, relayId, c.status));
    }
    case 'answerConnect': {
      const requested = m.pairs.filter((x) => x.state === 'requested');
      const entry = c.spoof === 'otherSlot' ? pick(requested.filter((x) => x.b !== s), c.i) : pick(requested.filter((x) => x.b === s), c.i);
      const relayId = (c.spoof === 'unknownId' || entry === undefined ? c.unknownId : entry.relayId) >>> 0;
      const connectionId =
        entry === undefined || c.spoof === 'unknownId' ? c.unknownId : c.spoof === 'wrongConnection' ? (entry.id ^ (c.unknownId | 1)) >>> 0 : entry.id;
      return one(
        { type: PacketType.SocketConnectionResponse, requestId: relayId, connectionId, status: c.status },
        m.connectResponse(s, relayId, connectionId, c.status),
      );
    }
    case 'data': {
      const { id } = resolvePair(m, s, c.pair);
      const payloads = c.sizes.map((size, i) => seededBytes((c.seed + i) >>> 0, size));
      const expected = inOrder(seq, payloads.map((p) => m.data(s, id, p)));
      const stream = concatBytes(payloads.map((p) => encodeArbitraryData(id, p)));
      return { bytes: splitAt(stream, c.cuts), expected, frames: payloads.length };
    }
    case 'window': {
      const { id } = resolvePair(m, s, c.pair);
      const owed = m.outstanding(s, id);
      const bytes = { all: owed, some: Math.floor(owed / 2), over: m.grantable(s, id) + 1, zero: 0, any: c.bytes }[c.grant] >>> 0;
      return one({ type: PacketType.WindowUpdate, connectionId: id, bytes }, m.windowUpdate(s, id, bytes));
    }
    case 'end': {
      const { id } = resolvePair(m, s, c.pair);
      return one({ type: PacketType.SocketEnd, connectionId: id }, m.end(s, id));
    }
    case 'close': {
      const { id } = resolvePair(m, s, c.pair);
      return one({ type: PacketType.SocketClosed, connectionId: id, reason: c.reason }, m.close(s, id, c.reason));
    }
  }
}

/** What a simple command needs in place first: ports to request from and to, a pair to use. */
async function prepare(h: RelayHarness, c: SimpleCommandData): Promise<void> {
  const m = h.model;
  const s = c.slot;
  if ((c.kind === 'status' || c.kind === 'connect') && c.prepare) {
    if (m.slots[s].ports.size === 0) await runCommand(h, { kind: 'bind', slot: s, port: { from: 'zero' } });
    if (c.target >= 0 && c.target !== s && m.slots[c.target].live && m.slots[c.target].ports.size === 0) {
      await runCommand(h, { kind: 'bind', slot: c.target, port: { from: 'fixed', i: c.connectionId } });
    }
  }
  if (c.kind === 'data' || c.kind === 'window' || c.kind === 'end' || c.kind === 'close') await ensureOwnPair(h, s, c.pair);
}

export async function runCommand(h: RelayHarness, c: CommandData): Promise<void> {
  const m = h.model;
  const s = c.slot;
  if (c.kind === 'reconnect') {
    if (m.slots[s].live) return;
    const hello = helloBytes(c.hello, c.n);
    const client = await h.connect(s, hello.bytes);
    if (hello.code === undefined) {
      await h.expectVirtualIp(s, m.connected(s));
      h.verify([]);
      return;
    }
    h.clients[s] = undefined;
    await h.awaitClosed(s, client);
    await h.barrier(undefined);
    h.verify([m.fatal(s, hello.code)], new Map([[s, client]]));
    return;
  }
  if (!m.slots[s].live) return;
  if (isSimple(c)) {
    await prepare(h, c);
    if (!m.slots[s].live) return;
    const { bytes, expected } = plan(m, s, c, 0);
    return exchange(h, s, bytes, expected);
  }
  switch (c.kind) {
    case 'openPair': {
      // A whole handshake (§6) in checked steps: bind both ends, request, accept.
      await runCommand(h, { kind: 'connect', slot: s, source: { from: 'held', i: c.i }, claimedIp: 0, target: c.target, otherIp: 0, port: { from: 'target', i: c.i }, connectionId: 0, prepare: true });
      const pair = m.pairs.find((x) => x.state === 'requested' && x.a === s && x.b !== s && m.pairsOf(x.b).includes(x));
      if (pair === undefined) return;
      return runCommand(h, { kind: 'answerConnect', slot: pair.b, i: m.pairs.filter((x) => x.state === 'requested' && x.b === pair.b).indexOf(pair), status: ConnectionStatus.Accepted, spoof: 'none', unknownId: 0 });
    }
    case 'batch': {
      // Pipelined: several commands' frames in one write, answered in the order sent.
      await ensureOwnPair(h, s, { from: 'own', i: 0 });
      if (!m.slots[s].live) return;
      const bytes: Uint8Array[] = [];
      const expected: Expectation[] = [];
      let seq = 0;
      for (const step of c.steps) {
        const p = plan(m, s, { ...step, slot: s } as SimpleCommandData, seq);
        seq += p.frames;
        bytes.push(...p.bytes);
        expected.push(...p.expected);
      }
      return exchange(h, s, splitAt(concatBytes(bytes), c.cuts), expected);
    }
    case 'malformed': {
      const { bytes, code } = malformed(c.shape, c.n);
      // Whatever follows the bad frame is never read (decoder stopped): it must change nothing.
      return endConnection(h, s, concatBytes([bytes, new Uint8Array(c.tail)]), code, c.shape === 'cutOff');
    }
    case 'disconnect':
      return endConnection(h, s, undefined, undefined, true);
    case 'stall':
      return stall(h, c);
  }
}

const STALL_FRAME_BYTES = 65_536;

async function stall(h: RelayHarness, c: Extract<CommandData, { kind: 'stall' }>): Promise<void> {
  const m = h.model;
  const s = c.slot;
  await ensureOwnPair(h, s, c.pair);
  const { id, pair } = resolvePair(m, s, c.pair);
  if (pair === undefined || pair.state === 'requested' || pair.state === (pair.a === s ? 'endedByA' : 'endedByB')) return;
  const reader = pair.a === s ? pair.b : pair.a;
  const credit = pair.a === s ? pair.creditAToB : pair.creditBToA;
  const frames = Math.min(c.frames, Math.floor(credit / STALL_FRAME_BYTES));
  if (frames === 0 || !m.slots[reader].live) return;
  const payloads = Array.from({ length: frames }, (_, i) => seededBytes((c.seed + i) >>> 0, STALL_FRAME_BYTES));
  const stream = concatBytes(payloads.map((p) => encodeArbitraryData(id, p)));
  const readerClient = h.client(reader);
  readerClient.pause();
  // Handed to the kernel: past here the relay reads it while the reader reads nothing.
  await new Promise<void>((resolve) => h.client(s).socket.write(stream, () => resolve()));
  if (c.then === 'resume') {
    const expected = inOrder(0, payloads.map((p) => m.data(s, id, p)));
    readerClient.resume();
    await h.barrier(s);
    h.verify(expected);
    return;
  }
  // The reader vanishes with data queued for it: how many frames the relay read before it
  // noticed is timing; each frame it reads after the pair is gone is refused to the sender.
  const expected: Expectation[] = m.released(reader);
  for (let i = 0; i < frames; i++) {
    expected.push({
      slot: s,
      what: `SocketClosed ${id} ProtocolViolation (a frame read after the pair closed)`,
      optional: true,
      match: (p) => p.type === PacketType.SocketClosed && p.connectionId === id && p.reason === CloseReason.ProtocolViolation,
    });
  }
  h.clients[reader] = undefined;
  readerClient.socket.destroy();
  await h.awaitRelease(reader, readerClient);
  await h.barrier(s);
  h.verify(expected);
}

/**
 * Brings the harness back to a clean state between cases with ordinary, checked commands:
 * every slot connected, every pending request answered, every pair closed, every port released.
 */
export async function resetCase(h: RelayHarness): Promise<void> {
  const m = h.model;
  for (let s = 0; s < SLOT_COUNT; s++) {
    if (!m.slots[s].live) await runCommand(h, { kind: 'reconnect', slot: s, hello: 'ok', n: 0 });
  }
  for (const st of [...m.statuses]) {
    const packet = encodePacket({ type: PacketType.SocketStatusResponse, requestId: st.relayId, status: SocketStatus.NotListening });
    await exchange(h, st.target, [packet], m.statusResponse(st.target, st.relayId, SocketStatus.NotListening));
  }
  for (const pair of [...m.pairs]) {
    if (pair.state === 'requested') {
      const packet = encodePacket({ type: PacketType.SocketConnectionResponse, requestId: pair.relayId, connectionId: pair.id, status: ConnectionStatus.Denied });
      await exchange(h, pair.b, [packet], m.connectResponse(pair.b, pair.relayId, pair.id, ConnectionStatus.Denied));
    } else {
      const packet = encodePacket({ type: PacketType.SocketClosed, connectionId: pair.id, reason: 0 });
      await exchange(h, pair.a, [packet], m.close(pair.a, pair.id, 0));
    }
  }
  for (let s = 0; s < SLOT_COUNT; s++) {
    const ports = [...m.slots[s].ports];
    if (ports.length === 0) continue;
    const bytes = ports.map((port) => encodePacket({ type: PacketType.Unbind, port }));
    await exchange(h, s, bytes, ports.flatMap((port) => m.unbind(s, port)));
  }
  if (m.pairs.length > 0 || m.statuses.length > 0 || m.slots.some((x) => x.ports.size > 0 || x.unlearnedPorts !== 0 || x.pendingOut !== 0)) {
    throw new ModelMismatch('reset left state behind');
  }
}
