/**
 * One virtual socket connection as the relay sees it, from the forwarded
 * SocketConnectionRequest to its removal (docs/PROTOCOL.md §6–§8). End `a` asked, end `b`
 * was asked. Pure logic: the relay actor supplies the packet writes and the table updates with
 * `.provide()`. ArbitraryData and WindowUpdate never come here; the relay forwards them with a
 * table lookup and only reports violations it finds there.
 */
import { assign, emit, setup } from 'xstate';

export type PairEnd = 'a' | 'b';

/** Names of the close reasons (the keys of CloseReason in protocol/constants.ts). */
export type PairCloseReason =
  | 'Normal'
  | 'PeerDisconnected'
  | 'IdleTimeout'
  | 'RelayShutdown'
  | 'ProtocolViolation'
  | 'FlowControlViolation'
  | 'Error'
  | 'E2eIntegrity'
  | 'E2eTruncated'
  | 'E2eMismatch';

/** How a pair ended, for the report: a close reason, or an outcome before it opened. */
export type PairEndReason = PairCloseReason | 'Finished' | 'Refused' | 'Timeout' | 'TargetDisconnected' | 'OriginDisconnected';

/** Why the origin's request failed before the pair opened (RequestFailed reasons). */
export type PairRequestFailure = 'Timeout' | 'TargetDisconnected';

export interface SocketPairInput {
  /** The connection id; provided actions find the pair's table entry by it. */
  id: number;
}

export interface SocketPairContext {
  id: number;
  endReason: PairEndReason | undefined;
}

/**
 * Where the pair is, as the relay caches it for the data path (is it open, has one end sent
 * SocketEnd). Only the `enterPhase` entry actions write that cache.
 */
export type SocketPairPhase = 'requested' | 'open' | 'endedByA' | 'endedByB' | 'closed';

/** Emitted at the moments the relay reports on its bus; the actor adds the payload. */
export type SocketPairEmitted = { type: 'pair.opened' } | { type: 'pair.closed' };

export type SocketPairEvent =
  /** The target answered SocketConnectionResponse Accepted. */
  | { type: 'response.accepted' }
  /** The target answered Denied or NotListening. */
  | { type: 'response.refused' }
  /** SocketEnd from one end (§7). */
  | { type: 'end.received'; end: PairEnd }
  /** SocketClosed from one end (§8). */
  | { type: 'close.received'; end: PairEnd; reason: PairCloseReason }
  /** The client connection of one end ended. */
  | { type: 'end.left'; end: PairEnd }
  /** The relay found a violation on the data path. */
  | { type: 'violation'; reason: 'ProtocolViolation' | 'FlowControlViolation' }
  | { type: 'idle.timeout' }
  | { type: 'relay.shutdown' };

function other(end: PairEnd): PairEnd {
  return end === 'a' ? 'b' : 'a';
}

export const socketPairMachine = setup({
  types: {
    input: {} as SocketPairInput,
    context: {} as SocketPairContext,
    events: {} as SocketPairEvent,
    emitted: {} as SocketPairEmitted,
  },
  actions: {
    recordEnd: assign((_, params: { reason: PairEndReason }) => ({ endReason: params.reason })),
    /** Adds the pair to the active-socket table so data may flow (§6.3: before A hears of it). */
    activate: () => {},
    /** Forwards the target's SocketConnectionResponse to the origin with the origin's request id. */
    forwardResponse: () => {},
    /** Answers the origin RequestFailed. */
    failRequest: (_, _params: { reason: PairRequestFailure }) => {},
    /** Forwards SocketEnd to the other end. */
    forwardEnd: (_, _params: { to: PairEnd }) => {},
    /** Sends SocketClosed with `reason` to the listed ends. */
    notify: (_, _params: { to: readonly PairEnd[]; reason: PairCloseReason }) => {},
    /** Removes the pair from every table and reports how it ended. */
    release: () => {},
    /** Records the state entered, for the relay's cache of it (the only writer of that cache). */
    enterPhase: (_, _params: { phase: SocketPairPhase }) => {},
  },
  guards: {
    isFrom: (_, params: { end: PairEnd; expected: PairEnd }) => params.end === params.expected,
  },
  delays: {
    // Overridden by the relay with its requestTimeoutMs (§6).
    requestTimeout: 10_000,
  },
}).createMachine({
  id: 'socketPair',
  context: ({ input }) => ({ id: input.id, endReason: undefined }),
  initial: 'requested',
  states: {
    // §6.2–3: forwarded to the target, waiting for its decision.
    requested: {
      entry: { type: 'enterPhase', params: { phase: 'requested' } },
      after: {
        requestTimeout: {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: { reason: 'Timeout' } },
            { type: 'failRequest', params: { reason: 'Timeout' } },
            // The target may still accept later; tell it to forget the connection id.
            { type: 'notify', params: { to: ['b'], reason: 'Error' } },
          ],
        },
      },
      on: {
        'response.accepted': { target: 'active', actions: ['activate', emit({ type: 'pair.opened' }), 'forwardResponse'] },
        'response.refused': {
          target: 'closed',
          actions: [{ type: 'recordEnd', params: { reason: 'Refused' } }, 'forwardResponse'],
        },
        'end.left': [
          {
            guard: { type: 'isFrom', params: ({ event }) => ({ end: event.end, expected: 'a' }) },
            target: 'closed',
            actions: [
              { type: 'recordEnd', params: { reason: 'OriginDisconnected' } },
              { type: 'notify', params: { to: ['b'], reason: 'PeerDisconnected' } },
            ],
          },
          {
            target: 'closed',
            actions: [
              { type: 'recordEnd', params: { reason: 'TargetDisconnected' } },
              { type: 'failRequest', params: { reason: 'TargetDisconnected' } },
            ],
          },
        ],
        'relay.shutdown': {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: { reason: 'RelayShutdown' } },
            { type: 'notify', params: { to: ['b'], reason: 'RelayShutdown' } },
          ],
        },
      },
    },
    // In the active-socket table; data flows outside the machine.
    active: {
      initial: 'open',
      on: {
        'close.received': {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: ({ event }) => ({ reason: event.reason }) },
            { type: 'notify', params: ({ event }) => ({ to: [other(event.end)], reason: event.reason }) },
          ],
        },
        'end.left': {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: { reason: 'PeerDisconnected' } },
            { type: 'notify', params: ({ event }) => ({ to: [other(event.end)], reason: 'PeerDisconnected' }) },
          ],
        },
        violation: {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: ({ event }) => ({ reason: event.reason }) },
            { type: 'notify', params: ({ event }) => ({ to: ['a', 'b'], reason: event.reason }) },
          ],
        },
        'idle.timeout': {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: { reason: 'IdleTimeout' } },
            { type: 'notify', params: { to: ['a', 'b'], reason: 'IdleTimeout' } },
          ],
        },
        'relay.shutdown': {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: { reason: 'RelayShutdown' } },
            { type: 'notify', params: { to: ['a', 'b'], reason: 'RelayShutdown' } },
          ],
        },
      },
      states: {
        open: {
          entry: { type: 'enterPhase', params: { phase: 'open' } },
          on: {
            'end.received': [
              {
                guard: { type: 'isFrom', params: ({ event }) => ({ end: event.end, expected: 'a' }) },
                target: 'endedByA',
                actions: { type: 'forwardEnd', params: { to: 'b' } },
              },
              { target: 'endedByB', actions: { type: 'forwardEnd', params: { to: 'a' } } },
            ],
          },
        },
        // §7: a half-closed pair still carries data the other way.
        endedByA: {
          entry: { type: 'enterPhase', params: { phase: 'endedByA' } },
          on: {
            'end.received': [
              {
                guard: { type: 'isFrom', params: ({ event }) => ({ end: event.end, expected: 'b' }) },
                target: '#socketPair.finished',
                actions: { type: 'forwardEnd', params: { to: 'a' } },
              },
              {
                target: '#socketPair.closed',
                actions: [
                  { type: 'recordEnd', params: { reason: 'ProtocolViolation' } },
                  { type: 'notify', params: { to: ['a', 'b'], reason: 'ProtocolViolation' } },
                ],
              },
            ],
          },
        },
        endedByB: {
          entry: { type: 'enterPhase', params: { phase: 'endedByB' } },
          on: {
            'end.received': [
              {
                guard: { type: 'isFrom', params: ({ event }) => ({ end: event.end, expected: 'a' }) },
                target: '#socketPair.finished',
                actions: { type: 'forwardEnd', params: { to: 'b' } },
              },
              {
                target: '#socketPair.closed',
                actions: [
                  { type: 'recordEnd', params: { reason: 'ProtocolViolation' } },
                  { type: 'notify', params: { to: ['a', 'b'], reason: 'ProtocolViolation' } },
                ],
              },
            ],
          },
        },
      },
    },
    // §7: SocketEnd has passed both ways; removed with no further packet.
    finished: {
      type: 'final',
      entry: [
        { type: 'enterPhase', params: { phase: 'closed' } },
        { type: 'recordEnd', params: { reason: 'Finished' } },
        'release',
        emit({ type: 'pair.closed' }),
      ],
    },
    closed: {
      type: 'final',
      entry: [{ type: 'enterPhase', params: { phase: 'closed' } }, 'release', emit({ type: 'pair.closed' })],
    },
  },
});
