/**
 * The socket pairs (§6–§8): one Pair per virtual socket connection, by connection id, with the
 * count of pairs each requesting host holds. Admission answers with the name of the bound that
 * refuses, not an exception.
 */
import type { Actor } from 'xstate';
import { ConnectionStatus, INITIAL_WINDOW_BYTES } from '../../protocol/index.ts';
import type { SocketPairPhase, socketPairMachine } from '../../machines/socket-pair.machine.ts';
import type { PairClosedEvent } from './relay-events.ts';
import type { RelayCounters } from './counters.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import { Tally } from './limits.ts';
import type { Connection } from './connection.ts';

const UINT32 = 0x1_0000_0000;

/** One virtual socket connection: end `a` asked, end `b` was asked. */
export class Pair {
  readonly id: number;
  readonly a: Connection;
  readonly b: Connection;
  readonly aAddress: string;
  readonly bAddress: string;
  readonly originRequestId: number;
  readonly requestedAt: number;
  actor!: Actor<typeof socketPairMachine>;
  /**
   * Cache of the machine's state for the data path: open (in the active-socket table), ever
   * opened, and which end has sent SocketEnd. Written only by the machine's `enterPhase` entry
   * actions (through enterPhase below).
   */
  open = false;
  opened = false;
  aEnded = false;
  bEnded = false;
  /**
   * The machine's state name, as pair.stateChanged reports it ('active.endedByA'). Written only
   * by the actor's snapshot subscription (machines.ts), after each transition.
   */
  state = 'requested';
  /** Payload bytes each sender may still send (§7 window), as the sender counts it. */
  creditAToB = INITIAL_WINDOW_BYTES;
  creditBToA = INITIAL_WINDOW_BYTES;
  bytesAToB = 0;
  bytesBToA = 0;
  openedAt = 0;
  lastActivity: number;
  /** The relay's request id while the target has not answered. */
  pendingRelayId: number | undefined;
  responseStatus: number = ConnectionStatus.Denied;
  /** What pair.closed reports, set when the pair is released. */
  closedEvent: PairClosedEvent | undefined = undefined;

  constructor(id: number, a: Connection, b: Connection, aAddress: string, bAddress: string, originRequestId: number, relayId: number, now: number) {
    this.id = id;
    this.a = a;
    this.b = b;
    this.aAddress = aAddress;
    this.bAddress = bAddress;
    this.originRequestId = originRequestId;
    this.pendingRelayId = relayId;
    this.requestedAt = this.lastActivity = now;
  }

  /** The machine entered `phase`: the data path's cache follows. */
  enterPhase(phase: SocketPairPhase): void {
    this.open = phase === 'open' || phase === 'endedByA' || phase === 'endedByB';
    if (this.open) this.opened = true;
    this.aEnded = phase === 'endedByA';
    this.bEnded = phase === 'endedByB';
  }
}

/** Live pairs by connection id (requested or open), and how many each requesting host holds. */
export class PairTable {
  readonly #pairs = new Map<number, Pair>();
  /** Socket connections per requesting host key. */
  readonly #perHost = new Tally();
  readonly #options: ResolvedRelayOptions;
  readonly #counters: RelayCounters;
  #nextId = 1;

  constructor(options: ResolvedRelayOptions, counters: RelayCounters) {
    this.#options = options;
    this.#counters = counters;
  }

  get size(): number {
    return this.#pairs.size;
  }

  get(id: number): Pair | undefined {
    return this.#pairs.get(id);
  }

  values(): IterableIterator<Pair> {
    return this.#pairs.values();
  }

  /**
   * Whether `origin` may open one more pair to `target`: undefined, or the bound that refuses
   * ('maxSocketsPerClient' is either end's own limit, not counted as a relay-wide refusal).
   */
  admit(origin: Connection, target: Connection): 'maxSocketsPerClient' | 'maxPairs' | 'maxPairsPerHost' | undefined {
    const o = this.#options;
    const limit = o.maxSocketsPerClient;
    if (origin.ports.size + origin.pairs.size >= limit || target.ports.size + target.pairs.size >= limit) return 'maxSocketsPerClient';
    // Who asks pays: the requesting host's count, so one real IP's 256 connections cannot
    // open 256 × 1024 pairs (issue 9, finding 3); the relay-wide count caps all hosts together.
    if (this.#pairs.size >= o.maxPairs) return 'maxPairs';
    if (this.#perHost.get(origin.hostKey) >= o.maxPairsPerHost) return 'maxPairsPerHost';
    return undefined;
  }

  /** A connection id non-zero and unique among live pairs (§6.2). */
  newId(): number {
    let id = this.#nextId;
    while (id === 0 || this.#pairs.has(id)) id = (id + 1) % UINT32;
    this.#nextId = (id + 1) % UINT32;
    return id;
  }

  add(pair: Pair): void {
    this.#pairs.set(pair.id, pair);
    this.#perHost.add(pair.a.hostKey, 1);
    pair.a.pairs.add(pair);
    pair.b.pairs.add(pair);
    this.#counters.pairCount = this.#pairs.size;
    this.#counters.pairsTotal++;
  }

  /** Removes the pair; false if it was not (or no longer) in the table. */
  delete(pair: Pair): boolean {
    if (this.#pairs.get(pair.id) !== pair) return false;
    this.#pairs.delete(pair.id);
    this.#perHost.add(pair.a.hostKey, -1);
    this.#counters.pairCount = this.#pairs.size;
    pair.a.pairs.delete(pair);
    pair.b.pairs.delete(pair);
    return true;
  }
}
