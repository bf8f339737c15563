/**
 * One SocketStatusRequest as the relay holds it (docs/PROTOCOL.md §6.1): forwarded to the target
 * under the relay's own request id, it waits for the target's SocketStatusResponse, the request
 * timeout, or the target's connection ending. Pure logic: the relay actor supplies the table
 * clean-up and the packet writes with `.provide()`; the end of the handshake is an emitted event
 * the actor forwards to its bus, so the machine never holds the bus.
 */
import { emit, setup } from 'xstate';

/** What the target answered (SocketStatus names). */
export type StatusAnswer = 'listening' | 'not-bound' | 'not-listening';

/** Why the origin hears RequestFailed (FailureReason names). */
export type StatusRequestFailure = 'Timeout' | 'TargetDisconnected';

export interface StatusRequestInput {
  /** The relay's request id; provided actions find the table entry by it. */
  relayId: number;
}

export interface StatusRequestContext {
  relayId: number;
}

export type StatusRequestEvent =
  /** The asked connection answered SocketStatusResponse. */
  | { type: 'response.received'; status: number; answer: StatusAnswer }
  /** The asked connection ended before answering. */
  | { type: 'target.left' };

/** Emitted when the handshake has an outcome the relay reports (handshake.completed). */
export type StatusRequestEmitted = { type: 'handshake.completed'; outcome: StatusAnswer | 'timeout' };

export const statusRequestMachine = setup({
  types: {
    input: {} as StatusRequestInput,
    context: {} as StatusRequestContext,
    events: {} as StatusRequestEvent,
    emitted: {} as StatusRequestEmitted,
  },
  actions: {
    /** Removes the request from the pending table and its two connections' counts. */
    settle: () => {},
    /** Forwards the target's answer to the origin under the origin's request id. */
    forwardAnswer: (_, _params: { status: number }) => {},
    /** Answers the origin RequestFailed. */
    failRequest: (_, _params: { reason: StatusRequestFailure }) => {},
  },
  delays: {
    // Overridden by the relay with its requestTimeoutMs (§6).
    requestTimeout: 10_000,
  },
}).createMachine({
  id: 'statusRequest',
  context: ({ input }) => ({ relayId: input.relayId }),
  initial: 'waiting',
  states: {
    // §6.1: forwarded to the target, waiting for its answer.
    waiting: {
      after: { requestTimeout: 'timedOut' },
      on: {
        'response.received': {
          target: 'answered',
          actions: [
            'settle',
            { type: 'forwardAnswer', params: ({ event }) => ({ status: event.status }) },
            emit(({ event }) => ({ type: 'handshake.completed' as const, outcome: event.answer })),
          ],
        },
        'target.left': 'targetLeft',
      },
    },
    answered: { type: 'final' },
    timedOut: {
      type: 'final',
      entry: [
        'settle',
        { type: 'failRequest', params: { reason: 'Timeout' } },
        emit({ type: 'handshake.completed', outcome: 'timeout' }),
      ],
    },
    // The relay has never reported a handshake here: the origin hears RequestFailed only.
    targetLeft: {
      type: 'final',
      entry: ['settle', { type: 'failRequest', params: { reason: 'TargetDisconnected' } }],
    },
  },
});
