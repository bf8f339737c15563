/**
 * The commands of the stateful relay fuzz, as data, and the fast-check arbitraries that make
 * them. A command is plain data, so a failing sequence is kept as JSON and replayed as found; its
 * references ("the pair this client holds, number 3") are resolved against the model when it
 * runs (relay-commands.ts), so any subsequence fast-check shrinks to still means something.
 */
import fc from 'fast-check';
import { ConnectionStatus, DEFAULT_MAX_FRAME_BYTES, SocketStatus } from '../protocol/index.ts';
import { u16, u32, u8 } from './packet-arbitraries.ts';
import { SLOT_COUNT } from './relay-model.ts';

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

/** Commands that are one write of frames with a known outcome, so several can share a write. */
export type SimpleCommandData = Extract<
  CommandData,
  { kind: 'bind' | 'unbind' | 'status' | 'connect' | 'answerStatus' | 'answerConnect' | 'data' | 'window' | 'end' | 'close' }
>;

export function isSimple(c: CommandData): c is SimpleCommandData {
  return ['bind', 'unbind', 'status', 'connect', 'answerStatus', 'answerConnect', 'data', 'window', 'end', 'close'].includes(c.kind);
}

/** Ports the commands name besides the ones clients hold. */
export const FIXED_PORTS = [1, 80, 7000, 7001, 25565, 65535];
/** The relay's frame limit in the harness (its default). */
export const RELAY_MAX_FRAME_BYTES = DEFAULT_MAX_FRAME_BYTES;

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
