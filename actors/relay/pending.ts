/**
 * Requests forwarded to a target and not yet answered (§6), by the relay's own request id.
 * Admission answers with the name of the bound that refuses, not an exception.
 */
import type { Actor } from 'xstate';
import type { statusRequestMachine } from '../../machines/status-request.machine.ts';
import type { RelayCounters } from './counters.ts';
import type { ResolvedRelayOptions } from './relay-options.ts';
import type { Connection } from './connection.ts';
import type { Pair } from './pairs.ts';

const UINT32 = 0x1_0000_0000;

/** A SocketStatusRequest forwarded to `target`; its machine decides how it ends. */
export interface PendingStatus {
  kind: 'status';
  relayId: number;
  origin: Connection;
  originRequestId: number;
  target: Connection;
  source: string;
  destination: string;
  startedAt: number;
  actor: Actor<typeof statusRequestMachine>;
}

/** A SocketConnectionRequest forwarded to its pair's `b`; the pair's machine decides. */
export interface PendingConnect {
  kind: 'connect';
  pair: Pair;
}

/** Either kind of waiting request. */
export type PendingRequest = PendingStatus | PendingConnect;

/** Requests waiting on a target, by the relay's request id. */
export class PendingTable {
  readonly #pending = new Map<number, PendingRequest>();
  readonly #options: ResolvedRelayOptions;
  readonly #counters: RelayCounters;
  #nextId = 1;

  constructor(options: ResolvedRelayOptions, counters: RelayCounters) {
    this.#options = options;
    this.#counters = counters;
  }

  get size(): number {
    return this.#pending.size;
  }

  get(relayId: number): PendingRequest | undefined {
    return this.#pending.get(relayId);
  }

  values(): IterableIterator<PendingRequest> {
    return this.#pending.values();
  }

  /**
   * Whether `origin` may have one more request waiting: undefined, or the bound that refuses
   * ('maxPendingRequestsPerClient' is the client's own limit, not counted as a relay-wide refusal).
   */
  admit(origin: Connection): 'maxPendingRequestsPerClient' | 'maxPendingRequests' | undefined {
    if (origin.pendingOut >= this.#options.maxPendingRequestsPerClient) return 'maxPendingRequestsPerClient';
    if (this.#pending.size >= this.#options.maxPendingRequests) return 'maxPendingRequests';
    return undefined;
  }

  /** A request id unique among pending requests. */
  newId(): number {
    let id = this.#nextId;
    while (this.#pending.has(id)) id = (id + 1) % UINT32;
    this.#nextId = (id + 1) % UINT32;
    return id;
  }

  /** Records a request of `origin` waiting under `relayId`. */
  add(relayId: number, entry: PendingRequest, origin: Connection): void {
    this.#pending.set(relayId, entry);
    this.#counters.pendingCount = this.#pending.size;
    origin.pendingOut++;
    if (entry.kind === 'status') entry.target.pendingIn.add(entry);
  }

  /** The status request is over, however it ended. */
  settleStatus(entry: PendingStatus): void {
    this.#pending.delete(entry.relayId);
    this.#counters.pendingCount = this.#pending.size;
    entry.origin.pendingOut--;
    entry.target.pendingIn.delete(entry);
  }

  /** The pair's connection request is over (answered, timed out, or an end left). */
  settleConnect(pair: Pair): void {
    if (pair.pendingRelayId === undefined) return;
    this.#pending.delete(pair.pendingRelayId);
    this.#counters.pendingCount = this.#pending.size;
    pair.pendingRelayId = undefined;
    pair.a.pendingOut--;
  }
}
