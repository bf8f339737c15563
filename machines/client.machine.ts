/**
 * The life of one AlphaNET client (the design text's TcpClient): it dials the relay, holds a
 * virtual IP while connected, and — when reconnection is enabled — dials again with backoff
 * after losing the relay. Pure logic: the actor layer provides `dialRelay` (TCP + Hello) and
 * the notification actions through `.provide()`.
 */
import { assign, fromPromise, setup } from 'xstate';

/** Backoff between reconnection attempts. */
export interface ReconnectPolicy {
  /** Delay before the first attempt, in ms. @default 100 */
  initialDelayMs: number;
  /** Largest delay between attempts, in ms. @default 5_000 */
  maxDelayMs: number;
  /** Each failed attempt multiplies the delay by this. @default 2 */
  factor: number;
  /** Attempts before giving up (the client then closes). @default Infinity */
  maxAttempts: number;
}

export interface ClientMachineInput {
  /** Reconnection policy, or false to close when the relay is lost. */
  reconnect: ReconnectPolicy | false;
}

export interface ClientMachineContext {
  reconnect: ReconnectPolicy | false;
  /** Dotted-quad virtual IP once known; kept across reconnections. */
  virtualIp: string | undefined;
  /** Failed reconnection attempts since the relay was last lost. */
  attempt: number;
  /** Why the client is reconnecting or closed, for scripts reading the snapshot. */
  error: { code: string; message: string } | undefined;
}

export type ClientMachineEvent =
  | { type: 'relay.lost'; code: string; message: string }
  | { type: 'client.close' };

/** What `dialRelay` resolves to once the relay answered Hello with VirtualIP. */
export interface DialResult {
  virtualIp: string;
}

function errorOf(error: unknown): { code: string; message: string } {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof e?.code === 'string' ? e.code : 'ERR_RELAY_UNREACHABLE',
    message: typeof e?.message === 'string' ? e.message : String(error),
  };
}

/**
 * Dial failures another attempt cannot cure: the relay presented a TLS key the client does not
 * trust (issue 12). It would present it again, and retrying would keep knocking on what may be
 * an impostor; the client closes with the error, which says how to accept a key changed on purpose.
 */
export const DIAL_ERRORS_NOT_RETRIED: readonly string[] = ['ERR_RELAY_FINGERPRINT_CHANGED', 'ERR_RELAY_FINGERPRINT_MISMATCH'];

export const clientMachine = setup({
  types: {
    context: {} as ClientMachineContext,
    events: {} as ClientMachineEvent,
    input: {} as ClientMachineInput,
  },
  actors: {
    // Placeholder: the actor layer provides the real dialler (TCP connect, Hello, VirtualIP).
    dialRelay: fromPromise<DialResult>(async () => {
      throw new Error('dialRelay not provided');
    }),
  },
  actions: {
    /** The first connection or a reconnection succeeded. */
    announceConnected: () => {},
    /** The relay was lost; connections fail, and sockets are suspended when it will reconnect. */
    announceLost: (_, _params: { willReconnect: boolean }) => {},
    /** The client is closed for good. */
    announceClosed: () => {},
  },
  guards: {
    canReconnect: ({ context }) => context.reconnect !== false,
    attemptsLeft: ({ context, event }) =>
      context.reconnect !== false &&
      context.attempt + 1 < context.reconnect.maxAttempts &&
      !DIAL_ERRORS_NOT_RETRIED.includes(errorOf((event as { error?: unknown }).error).code),
  },
  delays: {
    reconnectDelay: ({ context }) => {
      const policy = context.reconnect;
      if (policy === false) return 0;
      return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** context.attempt);
    },
  },
}).createMachine({
  id: 'client',
  context: ({ input }) => ({ reconnect: input.reconnect, virtualIp: undefined, attempt: 0, error: undefined }),
  initial: 'connecting',
  on: { 'client.close': '.closed' },
  states: {
    connecting: {
      invoke: {
        src: 'dialRelay',
        onDone: {
          target: 'connected',
          actions: assign({ virtualIp: ({ event }) => event.output.virtualIp, error: undefined }),
        },
        // The first dial failing is an answer for connect(): no retry, the caller decides.
        onError: { target: 'closed', actions: assign({ error: ({ event }) => errorOf(event.error) }) },
      },
    },
    connected: {
      entry: ['announceConnected', assign({ attempt: 0 })],
      on: {
        'relay.lost': [
          {
            guard: 'canReconnect',
            target: 'reconnecting',
            actions: [
              assign({ error: ({ event }) => ({ code: event.code, message: event.message }) }),
              { type: 'announceLost', params: { willReconnect: true } },
            ],
          },
          {
            target: 'closed',
            actions: [
              assign({ error: ({ event }) => ({ code: event.code, message: event.message }) }),
              { type: 'announceLost', params: { willReconnect: false } },
            ],
          },
        ],
      },
    },
    reconnecting: {
      initial: 'waiting',
      states: {
        waiting: { after: { reconnectDelay: 'dialing' } },
        dialing: {
          invoke: {
            src: 'dialRelay',
            onDone: {
              target: '#client.connected',
              actions: assign({ virtualIp: ({ event }) => event.output.virtualIp, error: undefined }),
            },
            onError: [
              {
                guard: 'attemptsLeft',
                target: 'waiting',
                actions: assign({ attempt: ({ context }) => context.attempt + 1, error: ({ event }) => errorOf(event.error) }),
              },
              { target: '#client.closed', actions: assign({ error: ({ event }) => errorOf(event.error) }) },
            ],
          },
        },
      },
    },
    closed: { type: 'final', entry: 'announceClosed' },
  },
});
