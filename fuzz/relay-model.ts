/**
 * The model of the relay that the stateful fuzz checks the real one against: which connection
 * of which virtual host holds which port, which socket pairs exist in which state with how much
 * window left, and which requests wait on which target (docs/PROTOCOL.md §5–§8). Each step
 * updates the model and returns what every client must receive because of it; ids the relay
 * picks (connection ids, its own request ids, ephemeral ports) are learnt from what arrives.
 */
import {
  BindStatus,
  CLOSE_REASON_NAMES,
  CloseReason,
  ConnectionStatus,
  ErrorCode,
  FailureReason,
  INITIAL_WINDOW_BYTES,
  MAX_WINDOW_BYTES,
  PacketType,
  type Packet,
  type WireAddress,
} from '../protocol/index.ts';
import { bytesEqual } from './bytes.ts';

/** Small limits so the fuzz reaches LimitReached within a few commands. */
export const MODEL_LIMITS = {
  maxSocketsPerClient: 6,
  maxPendingRequestsPerClient: 3,
} as const;

/** The client slots: slots 0 and 2 are two connections of one virtual host (one real IP). */
export const SLOT_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.2'] as const;
export const SLOT_COUNT = SLOT_ADDRESSES.length;

const EPHEMERAL_FIRST = 49152;

/** What one client must receive. */
export interface Expectation {
  slot: number;
  what: string;
  match: (packet: Packet) => boolean;
  /** Learns the relay's choices (ids, ports) from the packet that matched. */
  onMatch?: (packet: Packet) => void;
  /** ArbitraryData on this connection id: matched strictly in order. */
  dataOf?: number;
  /**
   * The frame (in the order sent) that causes this packet. A client receives what earlier
   * frames caused before what later ones cause; what one frame causes may come in any order.
   */
  seq?: number;
  /** May arrive or not (once at most), in any order: for outcomes that depend on timing. */
  optional?: boolean;
}

export interface ModelSlot {
  live: boolean;
  /** Connection generation: a pending request remembers the generation of its origin. */
  gen: number;
  ports: Set<number>;
  /**
   * Ephemeral ports granted whose number has not arrived yet (a BindResponse still on its way in
   * a pipelined batch): they count against the socket limit all the same.
   */
  unlearnedPorts: number;
  pendingOut: number;
}

export type PairState = 'requested' | 'open' | 'endedByA' | 'endedByB';

export interface ModelPair {
  /** Learnt from the SocketConnectionRequest forwarded to the target. */
  id: number;
  a: number;
  b: number;
  aGen: number;
  bGen: number;
  state: PairState;
  /** The relay's request id while requested. */
  relayId: number;
  originRequestId: number;
  creditAToB: number;
  creditBToA: number;
}

export interface ModelStatus {
  relayId: number;
  origin: number;
  originGen: number;
  originRequestId: number;
  target: number;
  targetGen: number;
}

function describe(p: Packet): string {
  return JSON.stringify(p, (_k, v: unknown) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v));
}

export function packetText(p: Packet): string {
  return describe(p);
}

export class RelayModel {
  readonly slots: ModelSlot[] = SLOT_ADDRESSES.map(() => ({
    live: false,
    gen: 0,
    ports: new Set(),
    unlearnedPorts: 0,
    pendingOut: 0,
  }));
  /** Virtual IP per real address, once learnt; permanent (the store's promise). */
  readonly ipOf = new Map<string, number>();
  pairs: ModelPair[] = [];
  statuses: ModelStatus[] = [];
  #nextRequestId = 1;

  newRequestId(): number {
    const id = this.#nextRequestId;
    this.#nextRequestId = (this.#nextRequestId % 0xfffffff0) + 1;
    return id;
  }

  hostOf(slot: number): string {
    return SLOT_ADDRESSES[slot];
  }

  /** Live slots of a virtual host. */
  liveSlotsOf(host: string): number[] {
    return this.slots.flatMap((s, i) => (s.live && SLOT_ADDRESSES[i] === host ? [i] : []));
  }

  /** The live slot holding `port` on `host`. */
  holder(host: string, port: number): number | undefined {
    return this.liveSlotsOf(host).find((i) => this.slots[i].ports.has(port));
  }

  hostOfIp(ip: number): string | undefined {
    for (const [host, known] of this.ipOf) if (known === ip && this.liveSlotsOf(host).length > 0) return host;
    return undefined;
  }

  pairsOf(slot: number): ModelPair[] {
    return this.pairs.filter((p) => p.a === slot || p.b === slot);
  }

  socketsOf(slot: number): number {
    const s = this.slots[slot];
    return s.ports.size + s.unlearnedPorts + this.pairsOf(slot).length;
  }

  pendingCount(): number {
    return this.statuses.length + this.pairs.filter((p) => p.state === 'requested').length;
  }

  // ------------------------------------------------------------------ connection life

  /** A slot said Hello and must hear VirtualIP with its host's permanent address. */
  connected(slot: number): Expectation {
    const s = this.slots[slot];
    s.live = true;
    s.gen++;
    s.ports = new Set();
    s.unlearnedPorts = 0;
    s.pendingOut = 0;
    const host = this.hostOf(slot);
    return {
      slot,
      what: `VirtualIP for ${host}${this.ipOf.has(host) ? ` = ${this.ipOf.get(host)}` : ''}`,
      match: (p) => p.type === PacketType.VirtualIp && (this.ipOf.get(host) ?? p.ip) === p.ip,
      onMatch: (p) => {
        if (p.type === PacketType.VirtualIp) this.ipOf.set(host, p.ip);
      },
    };
  }

  /** A slot's connection ended (closed, reset, or refused for what it sent). */
  released(slot: number): Expectation[] {
    const s = this.slots[slot];
    if (!s.live) return [];
    const out: Expectation[] = [];
    s.live = false;
    s.ports = new Set();
    s.unlearnedPorts = 0;
    for (const pair of this.pairsOf(slot)) {
      this.#dropPair(pair);
      if (pair.state === 'requested') {
        if (pair.a === slot) out.push(this.#closedTo(pair.b, pair.id, CloseReason.PeerDisconnected));
        else out.push(this.#failedTo(pair.a, pair.originRequestId, FailureReason.TargetDisconnected));
      } else {
        out.push(this.#closedTo(pair.a === slot ? pair.b : pair.a, pair.id, CloseReason.PeerDisconnected));
      }
    }
    for (const st of this.statuses.filter((x) => x.target === slot)) {
      this.#dropStatus(st);
      if (this.#originLive(st)) out.push(this.#failedTo(st.origin, st.originRequestId, FailureReason.TargetDisconnected));
    }
    return out;
  }

  // ------------------------------------------------------------------ ports (§5)

  bind(slot: number, requestId: number, port: number): Expectation[] {
    const s = this.slots[slot];
    const host = this.hostOf(slot);
    const reply = (status: number, expectPort: number | undefined, learn?: (p: number) => void): Expectation => ({
      slot,
      what: `BindResponse ${requestId} status ${status} port ${expectPort ?? 'ephemeral'}`,
      match: (p) =>
        p.type === PacketType.BindResponse &&
        p.requestId === requestId &&
        p.status === status &&
        (expectPort !== undefined
          ? p.port === expectPort
          : p.port >= EPHEMERAL_FIRST && p.port <= 65535 && this.holder(host, p.port) === undefined),
      onMatch: (p) => {
        if (p.type === PacketType.BindResponse) learn?.(p.port);
      },
    });
    if (this.socketsOf(slot) >= MODEL_LIMITS.maxSocketsPerClient) return [reply(BindStatus.LimitReached, port)];
    if (port === 0) {
      s.unlearnedPorts++;
      const gen = s.gen;
      return [
        reply(BindStatus.Ok, undefined, (p) => {
          if (s.gen !== gen) return;
          s.unlearnedPorts--;
          s.ports.add(p);
        }),
      ];
    }
    if (this.holder(host, port) !== undefined) return [reply(BindStatus.AddressInUse, port)];
    s.ports.add(port);
    return [reply(BindStatus.Ok, port)];
  }

  unbind(slot: number, port: number): Expectation[] {
    this.slots[slot].ports.delete(port);
    return [];
  }

  // ------------------------------------------------------------------ requests (§6)

  #failedTo(slot: number, requestId: number, reason: number): Expectation {
    return {
      slot,
      what: `RequestFailed ${requestId} reason ${reason}`,
      match: (p) => p.type === PacketType.RequestFailed && p.requestId === requestId && p.reason === reason,
    };
  }

  #closedTo(slot: number, connectionId: number, reason: number): Expectation {
    return {
      slot,
      what: `SocketClosed ${connectionId} reason ${reason}`,
      match: (p) => p.type === PacketType.SocketClosed && p.connectionId === connectionId && p.reason === reason,
    };
  }

  #originLive(st: ModelStatus): boolean {
    return this.slots[st.origin].live && this.slots[st.origin].gen === st.originGen;
  }

  #dropStatus(st: ModelStatus): void {
    this.statuses = this.statuses.filter((x) => x !== st);
    if (this.#originLive(st)) this.slots[st.origin].pendingOut--;
  }

  #dropPair(pair: ModelPair): void {
    this.pairs = this.pairs.filter((x) => x !== pair);
    if (pair.state === 'requested' && this.slots[pair.a].live && this.slots[pair.a].gen === pair.aGen) this.slots[pair.a].pendingOut--;
  }

  /**
   * The checks both requests share (§6), in the relay's order. Returns the target slot, or the
   * answer the relay gives itself.
   */
  #route(
    slot: number,
    kind: 'status' | 'connect',
    requestId: number,
    source: WireAddress,
    destination: WireAddress,
  ): { target: number } | { answer: Expectation } {
    const s = this.slots[slot];
    if (!s.ports.has(source.port)) return { answer: this.#failedTo(slot, requestId, FailureReason.InvalidRequest) };
    if (s.pendingOut >= MODEL_LIMITS.maxPendingRequestsPerClient) return { answer: this.#failedTo(slot, requestId, FailureReason.LimitReached) };
    const host = this.hostOfIp(destination.ip);
    if (host === undefined) return { answer: this.#failedTo(slot, requestId, FailureReason.Offline) };
    const target = this.holder(host, destination.port);
    if (target === undefined) {
      const answer: Expectation =
        kind === 'status'
          ? {
              slot,
              what: `SocketStatusResponse ${requestId} NotBound`,
              match: (p) => p.type === PacketType.SocketStatusResponse && p.requestId === requestId && p.status === 1,
            }
          : {
              slot,
              what: `SocketConnectionResponse ${requestId} NotListening`,
              match: (p) =>
                p.type === PacketType.SocketConnectionResponse &&
                p.requestId === requestId &&
                p.connectionId === 0 &&
                p.status === ConnectionStatus.NotListening,
            };
      return { answer };
    }
    if (target === slot) return { answer: this.#failedTo(slot, requestId, FailureReason.InvalidRequest) };
    return { target };
  }

  #stampedSource(slot: number, port: number): WireAddress {
    return { ip: this.ipOf.get(this.hostOf(slot))!, port };
  }

  statusRequest(slot: number, requestId: number, source: WireAddress, destination: WireAddress): Expectation[] {
    const route = this.#route(slot, 'status', requestId, source, destination);
    if ('answer' in route) return [route.answer];
    const target = route.target;
    const st: ModelStatus = {
      relayId: -1,
      origin: slot,
      originGen: this.slots[slot].gen,
      originRequestId: requestId,
      target,
      targetGen: this.slots[target].gen,
    };
    this.statuses.push(st);
    this.slots[slot].pendingOut++;
    const src = this.#stampedSource(slot, source.port);
    return [
      {
        slot: target,
        what: `SocketStatusRequest from ${src.ip}:${src.port} to port ${destination.port}`,
        match: (p) =>
          p.type === PacketType.SocketStatusRequest &&
          p.source.ip === src.ip &&
          p.source.port === src.port &&
          p.destination.ip === destination.ip &&
          p.destination.port === destination.port &&
          !this.statuses.some((x) => x.relayId === p.requestId) &&
          !this.pairs.some((x) => x.state === 'requested' && x.relayId === p.requestId),
        onMatch: (p) => {
          if (p.type === PacketType.SocketStatusRequest) st.relayId = p.requestId;
        },
      },
    ];
  }

  /** A SocketStatusResponse from `slot` carrying the relay id `relayId`. */
  statusResponse(slot: number, relayId: number, status: number): Expectation[] {
    const st = this.statuses.find((x) => x.relayId === relayId);
    // Only the asked connection may answer; anything else is dropped (§6).
    if (st === undefined || st.target !== slot || this.slots[slot].gen !== st.targetGen) return [];
    const originLive = this.#originLive(st);
    this.#dropStatus(st);
    if (!originLive) return [];
    return [
      {
        slot: st.origin,
        what: `SocketStatusResponse ${st.originRequestId} status ${status}`,
        match: (p) => p.type === PacketType.SocketStatusResponse && p.requestId === st.originRequestId && p.status === status,
      },
    ];
  }

  connectRequest(slot: number, requestId: number, source: WireAddress, destination: WireAddress): Expectation[] {
    const route = this.#route(slot, 'connect', requestId, source, destination);
    if ('answer' in route) return [route.answer];
    const target = route.target;
    const limit = MODEL_LIMITS.maxSocketsPerClient;
    if (this.socketsOf(slot) >= limit || this.socketsOf(target) >= limit) {
      return [this.#failedTo(slot, requestId, FailureReason.LimitReached)];
    }
    const pair: ModelPair = {
      id: 0,
      a: slot,
      b: target,
      aGen: this.slots[slot].gen,
      bGen: this.slots[target].gen,
      state: 'requested',
      relayId: -1,
      originRequestId: requestId,
      creditAToB: INITIAL_WINDOW_BYTES,
      creditBToA: INITIAL_WINDOW_BYTES,
    };
    this.pairs.push(pair);
    this.slots[slot].pendingOut++;
    const src = this.#stampedSource(slot, source.port);
    return [
      {
        slot: target,
        what: `SocketConnectionRequest from ${src.ip}:${src.port} to port ${destination.port}`,
        match: (p) =>
          p.type === PacketType.SocketConnectionRequest &&
          p.connectionId !== 0 &&
          !this.pairs.some((x) => x !== pair && x.id === p.connectionId) &&
          p.source.ip === src.ip &&
          p.source.port === src.port &&
          p.destination.ip === destination.ip &&
          p.destination.port === destination.port,
        onMatch: (p) => {
          if (p.type !== PacketType.SocketConnectionRequest) return;
          pair.id = p.connectionId;
          pair.relayId = p.requestId;
        },
      },
    ];
  }

  /** A SocketConnectionResponse from `slot`. */
  connectResponse(slot: number, relayId: number, connectionId: number, status: number): Expectation[] {
    const pair = this.pairs.find((x) => x.state === 'requested' && x.relayId === relayId);
    if (pair === undefined || pair.b !== slot || pair.id !== connectionId) {
      // A late or foreign answer: an accepting sender is told to drop what it opened (§6).
      const known = this.pairs.find((x) => x.id === connectionId);
      if (status === ConnectionStatus.Accepted && connectionId !== 0 && (known === undefined || known.b !== slot)) {
        return [this.#closedTo(slot, connectionId, CloseReason.Error)];
      }
      return [];
    }
    this.slots[pair.a].pendingOut--;
    if (status === ConnectionStatus.Accepted) {
      pair.state = 'open';
      return [
        {
          slot: pair.a,
          what: `SocketConnectionResponse ${pair.originRequestId} Accepted ${pair.id}`,
          match: (p) =>
            p.type === PacketType.SocketConnectionResponse &&
            p.requestId === pair.originRequestId &&
            p.connectionId === pair.id &&
            p.status === ConnectionStatus.Accepted,
        },
      ];
    }
    // Refused: the pair goes; only NotListening passes unchanged, anything else is Denied.
    pair.state = 'open'; // so #dropPair does not count the settled request twice
    this.#dropPair(pair);
    const said = status === ConnectionStatus.NotListening ? status : ConnectionStatus.Denied;
    return [
      {
        slot: pair.a,
        what: `SocketConnectionResponse ${pair.originRequestId} status ${said}`,
        match: (p) =>
          p.type === PacketType.SocketConnectionResponse &&
          p.requestId === pair.originRequestId &&
          p.connectionId === 0 &&
          p.status === said,
      },
    ];
  }

  // ------------------------------------------------------------------ data, ends, closes (§7–§8)

  /** The active pair `connectionId` when `slot` is one of its ends. */
  #activePairOf(slot: number, connectionId: number): ModelPair | undefined {
    return this.pairs.find((x) => x.id === connectionId && x.state !== 'requested' && (x.a === slot || x.b === slot));
  }

  #violation(pair: ModelPair, reason: number): Expectation[] {
    this.#dropPair(pair);
    return [this.#closedTo(pair.a, pair.id, reason), this.#closedTo(pair.b, pair.id, reason)];
  }

  data(slot: number, connectionId: number, payload: Uint8Array): Expectation[] {
    const pair = this.#activePairOf(slot, connectionId);
    if (pair === undefined) return [this.#closedTo(slot, connectionId, CloseReason.ProtocolViolation)];
    const fromA = pair.a === slot;
    if (pair.state === (fromA ? 'endedByA' : 'endedByB')) return this.#violation(pair, CloseReason.ProtocolViolation);
    if (fromA) pair.creditAToB -= payload.length;
    else pair.creditBToA -= payload.length;
    if ((fromA ? pair.creditAToB : pair.creditBToA) < 0) return this.#violation(pair, CloseReason.FlowControlViolation);
    const to = fromA ? pair.b : pair.a;
    return [
      {
        slot: to,
        what: `ArbitraryData ${connectionId} of ${payload.length} bytes`,
        dataOf: connectionId,
        match: (p) => p.type === PacketType.ArbitraryData && p.connectionId === connectionId && bytesEqual(p.data, payload),
      },
    ];
  }

  /** Payload bytes `slot` has received on the pair and not granted back. */
  outstanding(slot: number, connectionId: number): number {
    const pair = this.#activePairOf(slot, connectionId);
    if (pair === undefined) return 0;
    return Math.max(0, INITIAL_WINDOW_BYTES - (pair.a === slot ? pair.creditBToA : pair.creditAToB));
  }

  /** Largest grant `slot` may still make on the pair: its window may grow to MAX_WINDOW_BYTES (§7). */
  grantable(slot: number, connectionId: number): number {
    const pair = this.#activePairOf(slot, connectionId);
    if (pair === undefined) return 0;
    return MAX_WINDOW_BYTES - (pair.a === slot ? pair.creditBToA : pair.creditAToB);
  }

  windowUpdate(slot: number, connectionId: number, bytes: number): Expectation[] {
    const pair = this.#activePairOf(slot, connectionId);
    if (pair === undefined) return [this.#closedTo(slot, connectionId, CloseReason.ProtocolViolation)];
    // The grantor is the receiver of the other direction; its window may grow up to
    // MAX_WINDOW_BYTES, and credit past that is a violation (§7). The relay-wide budget for
    // credit above the initial window is never reached by the model's few pairs.
    if (pair.a === slot) pair.creditBToA += bytes;
    else pair.creditAToB += bytes;
    if (pair.creditBToA > MAX_WINDOW_BYTES || pair.creditAToB > MAX_WINDOW_BYTES) {
      return this.#violation(pair, CloseReason.FlowControlViolation);
    }
    return [
      {
        slot: pair.a === slot ? pair.b : pair.a,
        what: `WindowUpdate ${connectionId} +${bytes}`,
        match: (p) => p.type === PacketType.WindowUpdate && p.connectionId === connectionId && p.bytes === bytes,
      },
    ];
  }

  end(slot: number, connectionId: number): Expectation[] {
    const pair = this.#activePairOf(slot, connectionId);
    if (pair === undefined) return [this.#closedTo(slot, connectionId, CloseReason.ProtocolViolation)];
    const fromA = pair.a === slot;
    const forward = (to: number): Expectation => ({
      slot: to,
      what: `SocketEnd ${connectionId}`,
      match: (p) => p.type === PacketType.SocketEnd && p.connectionId === connectionId,
    });
    if (pair.state === 'open') {
      pair.state = fromA ? 'endedByA' : 'endedByB';
      return [forward(fromA ? pair.b : pair.a)];
    }
    if (pair.state === (fromA ? 'endedByA' : 'endedByB')) return this.#violation(pair, CloseReason.ProtocolViolation);
    // SocketEnd has now passed both ways: the pair is finished, with no further packet (§7).
    this.#dropPair(pair);
    return [forward(fromA ? pair.b : pair.a)];
  }

  close(slot: number, connectionId: number, reason: number): Expectation[] {
    const pair = this.#activePairOf(slot, connectionId);
    // §8: a close for an id the sender is not an end of is ignored.
    if (pair === undefined) return [];
    this.#dropPair(pair);
    const passed = CLOSE_REASON_NAMES[reason] !== undefined ? reason : CloseReason.Error;
    return [this.#closedTo(pair.a === slot ? pair.b : pair.a, connectionId, passed)];
  }

  /** The fatal Error a slot must receive before its connection is closed. */
  fatal(slot: number, code: number): Expectation {
    return {
      slot,
      what: `Error code ${code}`,
      match: (p) => p.type === PacketType.Error && p.code === code,
    };
  }
}

export { ErrorCode };
