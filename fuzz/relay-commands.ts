/**
 * The commands of the stateful relay fuzz (fast-check model-based testing, `fc.commands`).
 * A command is plain data (so a failing sequence is kept as JSON and replayed as found); its
 * references ("the pair this client holds, number 3") are resolved against the model when it
 * runs, so any subsequence fast-check shrinks to still means something. Each command is sent by
 * a raw-protocol client, and everything every client receives because of it is checked.
 */
import fc from 'fast-check';
import {
  CloseReason,
  ConnectionStatus,
  DEFAULT_MAX_FRAME_BYTES,
  ErrorCode,
  HELLO_MAGIC,
  PacketType,
  SocketStatus,
  encodeArbitraryData,
  encodePacket,
  type Packet,
  type WireAddress,
} from '../protocol/index.ts';
import { concatBytes, seededBytes, splitAt, toJsonValue } from './bytes.ts';
import { rawFrame, u16, u32, u8 } from './packet-arbitraries.ts';
import { ModelMismatch, RelayHarness } from './relay-harness.ts';
import { SLOT_COUNT, type Expectation, type ModelPair, type RelayModel } from './relay-model.ts';

/** How a command names a port; resolved against the model when it runs. */
export type PortChoice =
  | { from: 'held'; i: number } // one the client itself holds
  | { from: 'target'; i: number } // one the request's target slot holds
  | { from: 'fixed'; i: number }
  | { from: 'random'; port: number };

/** How a command names a socket pair: one of the sender's, anyone's (spoofing), or a made-up id. */
export type PairChoice = { from: 'own' | 'any'; i: number } | { from: 'random'; id: number };

export type MalformedShape =
  | 'empty'
  | 'tooLarge'
  | 'unknownType'
  | 'wrongSize'
  | 'shortData'
  | 'relayOnly'
  | 'secondHello'
  | 'badUtf8Error'
  | 'clientError'
  | 'cutOff';

export type HelloShape = 'ok' | 'badVersion' | 'packetFirst' | 'bigFirst';

export type CommandData =
  | { kind: 'bind'; slot: number; port: PortChoice | { from: 'zero' } }
  | { kind: 'unbind'; slot: number; port: PortChoice }
  | {
      kind: 'status' | 'connect';
      slot: number;
      source: PortChoice;
      /** Claimed source IP: the relay must stamp its own. */
      claimedIp: number;
      /** Target slot, or -1 for an address nobody has. */
      target: number;
      otherIp: number;
      port: PortChoice;
      connectionId: number;
      /**
       * Bind first what the request needs (a source port, a port at the target), as a client
       * library does; without it most random requests would stop at the relay's first check.
       */
      prepare: boolean;
    }
  | { kind: 'openPair'; slot: number; target: number; i: number }
  /** Several simple commands from one client in one write (their own slots are ignored). */
  | { kind: 'batch'; slot: number; steps: CommandData[]; cuts: number[] }
  | { kind: 'answerStatus'; slot: number; i: number; status: number; spoof: 'none' | 'otherSlot' | 'unknownId'; unknownId: number }
  | {
      kind: 'answerConnect';
      slot: number;
      i: number;
      status: number;
      spoof: 'none' | 'otherSlot' | 'wrongConnection' | 'unknownId';
      unknownId: number;
    }
  | { kind: 'data'; slot: number; pair: PairChoice; sizes: number[]; seed: number; cuts: number[] }
  | { kind: 'window'; slot: number; pair: PairChoice; grant: 'all' | 'some' | 'over' | 'zero' | 'any'; bytes: number }
  | { kind: 'end'; slot: number; pair: PairChoice }
  | { kind: 'close'; slot: number; pair: PairChoice; reason: number }
  | { kind: 'malformed'; slot: number; shape: MalformedShape; n: number; tail: number[] }
  | { kind: 'disconnect'; slot: number }
  /**
   * Backpressure (§7): the other end of one of the client's pairs stops reading, the client sends
   * a burst of 64 KiB frames within its window, then the reader either reads again (everything
   * must arrive, in order) or vanishes (the sender must hear PeerDisconnected, and the relay go on).
   */
  | { kind: 'stall'; slot: number; pair: PairChoice; frames: number; seed: number; then: 'resume' | 'vanish' }
  | { kind: 'reconnect'; slot: number; hello: HelloShape; n: number };

const FIXED_PORTS = [1, 80, 7000, 7001, 25565, 65535];
/** The relay's frame limit in the harness (its default). */
const RELAY_MAX_FRAME_BYTES = DEFAULT_MAX_FRAME_BYTES;
/** Before VirtualIP the relay takes frames of at most this many bytes (docs/PROTOCOL.md §2). */
const PRE_HELLO_MAX_FRAME_BYTES = 64;
const KNOWN_TYPES = new Set(Object.values(PacketType) as number[]);
const UNKNOWN_TYPES = Array.from({ length: 256 }, (_, i) => i).filter((t) => !KNOWN_TYPES.has(t));
const FIXED_SIZES: readonly [number, number][] = [
  [PacketType.Hello, 6],
  [PacketType.Ping, 4],
  [PacketType.BindRequest, 6],
  [PacketType.Unbind, 2],
  [PacketType.SocketStatusRequest, 16],
  [PacketType.SocketConnectionResponse, 9],
  [PacketType.SocketEnd, 4],
  [PacketType.SocketClosed, 5],
  [PacketType.WindowUpdate, 8],
];

// ---------------------------------------------------------------------- arbitraries

const slot = fc.integer({ min: 0, max: SLOT_COUNT - 1 });
const portChoice: fc.Arbitrary<PortChoice> = fc.oneof(
  { arbitrary: fc.record({ from: fc.constant('held' as const), i: fc.nat(7) }), weight: 2 },
  { arbitrary: fc.record({ from: fc.constant('fixed' as const), i: fc.nat(FIXED_PORTS.length - 1) }), weight: 2 },
  { arbitrary: fc.record({ from: fc.constant('random' as const), port: u16 }), weight: 1 },
);
const targetPort: fc.Arbitrary<PortChoice> = fc.oneof(
  { arbitrary: fc.record({ from: fc.constant('target' as const), i: fc.nat(7) }), weight: 4 },
  { arbitrary: portChoice, weight: 1 },
);
const pairChoice: fc.Arbitrary<PairChoice> = fc.oneof(
  { arbitrary: fc.record({ from: fc.constant('own' as const), i: fc.nat(7) }), weight: 6 },
  { arbitrary: fc.record({ from: fc.constant('any' as const), i: fc.nat(7) }), weight: 1 },
  { arbitrary: fc.record({ from: fc.constant('random' as const), id: u32 }), weight: 1 },
);
/** Payload sizes: mostly small, some across TCP chunks, a few near the frame limit. */
const payloadSize = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 64 }), weight: 4 },
  { arbitrary: fc.integer({ min: 65, max: 16_384 }), weight: 3 },
  { arbitrary: fc.integer({ min: 16_385, max: 70_000 }), weight: 1 },
  { arbitrary: fc.constantFrom(RELAY_MAX_FRAME_BYTES - 9, 65_536), weight: 1 },
);
/** Enough 64 KiB frames in one burst to overrun the 1 MiB window. */
const windowBurst = fc.constant(Array.from({ length: 17 }, () => 65_536));

const requestCommand = (kind: 'status' | 'connect') =>
  fc.record({
    kind: fc.constant(kind),
    slot,
    source: fc.oneof({ arbitrary: fc.record({ from: fc.constant('held' as const), i: fc.nat(7) }), weight: 5 }, { arbitrary: portChoice, weight: 1 }),
    claimedIp: u32,
    target: fc.oneof({ arbitrary: slot, weight: 8 }, { arbitrary: fc.constant(-1), weight: 1 }),
    otherIp: u32,
    port: targetPort,
    connectionId: fc.oneof(fc.constant(0), u32),
    prepare: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
  });

export const commandData: fc.Arbitrary<CommandData> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('bind' as const),
      slot,
      port: fc.oneof({ arbitrary: fc.constant({ from: 'zero' as const }), weight: 2 }, { arbitrary: portChoice, weight: 3 }),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant('unbind' as const), slot, port: portChoice }), weight: 1 },
  { arbitrary: requestCommand('status'), weight: 3 },
  { arbitrary: requestCommand('connect'), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant('openPair' as const), slot, target: slot, i: fc.nat(7) }), weight: 4 },
  {
    arbitrary: fc.record({
      kind: fc.constant('answerStatus' as const),
      slot,
      i: fc.nat(3),
      status: fc.oneof(fc.constantFrom(SocketStatus.Listening, SocketStatus.NotBound, SocketStatus.NotListening), u8),
      spoof: fc.constantFrom('none', 'none', 'none', 'otherSlot', 'unknownId'),
      unknownId: u32,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('answerConnect' as const),
      slot,
      i: fc.nat(3),
      status: fc.oneof(
        { arbitrary: fc.constant(ConnectionStatus.Accepted), weight: 6 },
        { arbitrary: fc.constantFrom(ConnectionStatus.Denied, ConnectionStatus.NotListening), weight: 2 },
        { arbitrary: u8, weight: 1 },
      ),
      spoof: fc.constantFrom('none', 'none', 'none', 'none', 'otherSlot', 'wrongConnection', 'unknownId'),
      unknownId: u32,
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('data' as const),
      slot,
      pair: pairChoice,
      sizes: fc.oneof({ arbitrary: fc.array(payloadSize, { minLength: 1, maxLength: 4 }), weight: 12 }, { arbitrary: windowBurst, weight: 1 }),
      seed: u32,
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
    }),
    weight: 10,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('window' as const),
      slot,
      pair: pairChoice,
      grant: fc.constantFrom('all', 'all', 'some', 'over', 'zero', 'any'),
      bytes: u32,
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('end' as const), slot, pair: pairChoice }), weight: 3 },
  {
    arbitrary: fc.record({ kind: fc.constant('close' as const), slot, pair: pairChoice, reason: fc.oneof(fc.nat(6), u8) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('malformed' as const),
      slot,
      shape: fc.constantFrom<MalformedShape>(
        'empty',
        'tooLarge',
        'unknownType',
        'wrongSize',
        'shortData',
        'relayOnly',
        'secondHello',
        'badUtf8Error',
        'clientError',
        'cutOff',
      ),
      n: u32,
      tail: fc.array(u8, { maxLength: 24 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('disconnect' as const), slot }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('stall' as const),
      slot,
      pair: fc.record({ from: fc.constant('own' as const), i: fc.nat(7) }),
      frames: fc.integer({ min: 1, max: 16 }),
      seed: u32,
      then: fc.constantFrom('resume', 'vanish'),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('reconnect' as const),
      slot,
      hello: fc.constantFrom<HelloShape>('ok', 'ok', 'ok', 'badVersion', 'packetFirst', 'bigFirst'),
      n: u32,
    }),
    weight: 2,
  },
);

/** The simple commands, for batches: frames that may follow each other in one write. */
const simpleCommandData = commandData.filter((c): c is SimpleCommandData => isSimple(c));

/** Every command, with pipelined batches of two to six simple ones. */
export const anyCommandData: fc.Arbitrary<CommandData> = fc.oneof(
  { arbitrary: commandData, weight: 8 },
  {
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      slot,
      steps: fc.array(simpleCommandData, { minLength: 2, maxLength: 6 }),
      cuts: fc.array(fc.nat(), { maxLength: 6 }),
    }),
    weight: 1,
  },
);

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

/** The bytes and the fatal Error code (undefined: closed without one) of a malformed frame. */
function malformed(shape: MalformedShape, n: number): { bytes: Uint8Array; code: number | undefined } {
  switch (shape) {
    case 'empty':
      return { bytes: new Uint8Array(4), code: ErrorCode.MalformedFrame };
    case 'tooLarge':
      return { bytes: rawFrame(RELAY_MAX_FRAME_BYTES + 1 + (n % 0xfffbffff), PacketType.ArbitraryData, new Uint8Array(8)), code: ErrorCode.FrameTooLarge };
    case 'unknownType': {
      const body = seededBytes(n, n % 16);
      return { bytes: rawFrame(1 + body.length, UNKNOWN_TYPES[n % UNKNOWN_TYPES.length], body), code: ErrorCode.UnknownPacketType };
    }
    case 'wrongSize': {
      const [type, size] = FIXED_SIZES[n % FIXED_SIZES.length];
      const wrong = (size + 1 + ((n >>> 8) % 30)) % 40;
      const bodyBytes = wrong === size ? size + 1 : wrong;
      return { bytes: rawFrame(1 + bodyBytes, type, seededBytes(n, bodyBytes)), code: ErrorCode.MalformedFrame };
    }
    case 'shortData':
      return { bytes: rawFrame(1 + (n % 4), PacketType.ArbitraryData, seededBytes(n, n % 4)), code: ErrorCode.MalformedFrame };
    case 'relayOnly': {
      const choices = [
        encodePacket({ type: PacketType.VirtualIp, version: 1, ip: n, keepaliveIntervalMs: 1, keepaliveTimeoutMs: 1, maxFrameBytes: 1024 }),
        encodePacket({ type: PacketType.BindResponse, requestId: n, status: 0, port: n & 0xffff }),
        encodePacket({ type: PacketType.RequestFailed, requestId: n, reason: 1 }),
      ];
      return { bytes: choices[n % choices.length], code: ErrorCode.UnexpectedPacket };
    }
    case 'secondHello':
      return { bytes: encodePacket({ type: PacketType.Hello, version: 1 }), code: ErrorCode.UnexpectedPacket };
    case 'badUtf8Error':
      return { bytes: rawFrame(5, PacketType.Error, new Uint8Array([0, 1, 0xc3, 0x28])), code: ErrorCode.MalformedFrame };
    case 'clientError':
      return { bytes: encodePacket({ type: PacketType.Error, code: n & 0xffff, message: 'fuzz: going away' }), code: undefined };
    case 'cutOff':
      // A header promising more than ever arrives; then the client vanishes.
      return { bytes: rawFrame(100 + (n % 1000), PacketType.ArbitraryData, seededBytes(n, n % 50)), code: undefined };
  }
}

function helloBytes(shape: HelloShape, n: number): { bytes: Uint8Array; code: number | undefined } {
  switch (shape) {
    case 'ok':
      return { bytes: encodePacket({ type: PacketType.Hello, version: 1 }), code: undefined };
    case 'badVersion': {
      const version = n & 0xffff || 2;
      return { bytes: encodePacket({ type: PacketType.Hello, version: version === 1 ? 2 : version }), code: ErrorCode.UnsupportedVersion };
    }
    case 'packetFirst':
      return { bytes: encodePacket({ type: PacketType.Ping, nonce: n }), code: ErrorCode.UnexpectedPacket };
    case 'bigFirst':
      return { bytes: rawFrame(PRE_HELLO_MAX_FRAME_BYTES + 1 + (n % 100_000), HELLO_MAGIC & 0xff, new Uint8Array(4)), code: ErrorCode.FrameTooLarge };
  }
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

/** Commands that are one write of frames with a known outcome, so several can share a write. */
export type SimpleCommandData = Extract<
  CommandData,
  { kind: 'bind' | 'unbind' | 'status' | 'connect' | 'answerStatus' | 'answerConnect' | 'data' | 'window' | 'end' | 'close' }
>;

function isSimple(c: CommandData): c is SimpleCommandData {
  return ['bind', 'unbind', 'status', 'connect', 'answerStatus', 'answerConnect', 'data', 'window', 'end', 'close'].includes(c.kind);
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
      const bytes = { all: owed, some: Math.floor(owed / 2), over: owed + 1, zero: 0, any: c.bytes }[c.grant] >>> 0;
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

// ---------------------------------------------------------------------- fast-check glue

/** One command for fc.commands: runs its data against the harness, which owns the model. */
export class RelayCommand implements fc.AsyncCommand<RelayModel, RelayHarness> {
  constructor(readonly data: CommandData) {}
  check(): boolean {
    return true;
  }
  async run(_model: RelayModel, h: RelayHarness): Promise<void> {
    try {
      await runCommand(h, this.data);
    } catch (error) {
      h.broken = true;
      throw error;
    }
  }
  toString(): string {
    return JSON.stringify(toJsonValue(this.data));
  }
}

export const relayCommands = fc.commands([anyCommandData.map((d) => new RelayCommand(d), (c) => (c as RelayCommand).data)], {
  maxCommands: 24,
  size: 'large',
});

/** A harness shared by every case of a run, replaced when a case left it broken. */
export class HarnessPool {
  #harness: RelayHarness | undefined;
  /** Packets checked against the model, by type, over every harness of the pool. */
  readonly seen = new Map<string, number>();
  /** Relay bus events counted over every harness of the pool. */
  readonly events = new Map<string, number>();

  async fresh(): Promise<RelayHarness> {
    if (this.#harness !== undefined && this.#harness.broken) {
      const old = this.#harness;
      this.#harness = undefined;
      await old.close();
    }
    this.#harness ??= await RelayHarness.start(this.seen, this.events);
    try {
      await resetCase(this.#harness);
    } catch (error) {
      this.#harness.broken = true;
      throw error;
    }
    return this.#harness;
  }

  async close(): Promise<void> {
    await this.#harness?.close();
    this.#harness = undefined;
  }
}

/** Runs one command sequence as one case. */
export async function runSequence(pool: HarnessPool, commands: Iterable<fc.AsyncCommand<RelayModel, RelayHarness>>): Promise<void> {
  await fc.asyncModelRun(async () => {
    const h = await pool.fresh();
    return { model: h.model, real: h };
  }, commands);
}

/** The model property: any command sequence, checked command by command. */
export function relayModelProperty(pool: HarnessPool): fc.IAsyncPropertyWithHooks<[Iterable<fc.AsyncCommand<RelayModel, RelayHarness>>]> {
  return fc.asyncProperty(relayCommands, (commands) => runSequence(pool, commands));
}

