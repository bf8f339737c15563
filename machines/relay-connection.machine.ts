/**
 * The relay's view of one client TCP connection (docs/PROTOCOL.md §2, §4, §9): it waits for
 * Hello, has the address store record the client's virtual IP, serves it, and ends it with a
 * reason. Pure logic: the relay actor supplies the socket writes, the store and the clean-up
 * with `.provide()`. Data frames never come here; only set-up and tear-down do.
 */
import { assign, emit, fromPromise, setup } from 'xstate';

/** Names of the fatal conditions (the keys of ErrorCode in protocol/constants.ts). */
export type RelayConnectionErrorName =
  | 'UnsupportedVersion'
  | 'MalformedFrame'
  | 'FrameTooLarge'
  | 'UnknownPacketType'
  | 'HelloTimeout'
  | 'UnexpectedPacket'
  | 'KeepaliveTimeout'
  | 'TooManyClients'
  | 'RelayShuttingDown'
  | 'StoreFailure'
  | 'AddressSpaceExhausted'
  | 'Internal'
  | 'SlowConsumer'
  | 'FrameTimeout'
  | 'IdentityRequired'
  | 'BadIdentityProof';

/** Why a connection ended: a fatal condition, or the TCP connection closed under us. */
export type RelayConnectionEndReason = RelayConnectionErrorName | 'TransportClosed';

/** What the address store said. Failures are values so the machine can name them. */
export type AllocationResult =
  | { ok: true; virtualIp: number }
  | { ok: false; error: 'StoreFailure' | 'AddressSpaceExhausted'; message: string };

export interface RelayConnectionInput {
  /** The relay's id for this connection; provided actions find their socket by it. */
  id: number;
  /** The protocol versions this relay speaks. */
  supportedVersions: readonly number[];
  /**
   * The relay ties addresses to keys (`--identity-mode key`): a Hello that will not prove a key
   * is refused with IdentityRequired (docs/PROTOCOL.md §2a). @default false
   */
  identityRequired?: boolean;
}

export interface RelayConnectionContext {
  id: number;
  supportedVersions: readonly number[];
  identityRequired: boolean;
  virtualIp: number | undefined;
  endReason: RelayConnectionEndReason | undefined;
  endMessage: string | undefined;
}

/**
 * The machine's top-level state, as the relay caches it for its hot checks (admission of a
 * frame, the write path). Only the `enterPhase` entry actions write that cache.
 */
export type RelayConnectionPhase = 'awaitingHello' | 'proving' | 'registering' | 'ready' | 'closed';

/** Emitted at the moments the relay reports on its bus; the actor adds the payload. */
export type RelayConnectionEmitted = { type: 'client.connected' } | { type: 'client.disconnected' };

export type RelayConnectionEvent =
  /** `proves`: the Hello's version is the one that proves an identity key (§2a). */
  | { type: 'hello.received'; version: number; proves?: boolean }
  /** The IdentityProof's signature over the challenge verified (§2a). */
  | { type: 'identity.proven' }
  /** The IdentityProof did not verify; `message` says what was wrong. */
  | { type: 'identity.refused'; message: string }
  /** A packet not allowed in the current state (before Hello, a second Hello, a relay-only packet). */
  | { type: 'packet.unexpected'; name: string }
  /** The frame stream or a packet is bad; `error` says which fatal condition. */
  | { type: 'protocol.error'; error: RelayConnectionErrorName; message: string }
  | { type: 'keepalive.timeout' }
  | { type: 'relay.shutdown' }
  | { type: 'transport.closed' };

interface FailParams {
  error: RelayConnectionErrorName;
  message: string;
}

function fail(error: RelayConnectionErrorName, message: string) {
  return [
    { type: 'recordEnd', params: { error, message } },
    { type: 'sendError', params: { error, message } },
    'closeTransport',
  ] as const;
}

export const relayConnectionMachine = setup({
  types: {
    input: {} as RelayConnectionInput,
    context: {} as RelayConnectionContext,
    events: {} as RelayConnectionEvent,
    emitted: {} as RelayConnectionEmitted,
  },
  actors: {
    // Replaced by the relay with the store's findOrAllocate; resolves only once durable (§2.2).
    allocateAddress: fromPromise<AllocationResult, { id: number }>(async () => ({
      ok: false,
      error: 'StoreFailure',
      message: 'no address store provided',
    })),
  },
  actions: {
    recordEnd: assign((_, params: { error: RelayConnectionEndReason; message: string }) => ({
      endReason: params.error,
      endMessage: params.message,
    })),
    recordVirtualIp: assign((_, params: { virtualIp: number }) => ({ virtualIp: params.virtualIp })),
    /** Writes a Challenge of fresh random bytes, remembered for the proof (§2a). */
    sendChallenge: () => {},
    /** Writes VirtualIP with the relay's terms. */
    sendVirtualIp: (_, _params: { virtualIp: number }) => {},
    /** Writes an Error packet. */
    sendError: (_, _params: FailParams) => {},
    /** Ends the TCP connection once queued bytes are out. */
    closeTransport: () => {},
    /** Frees everything the connection held (ports, pairs, requests) and reports the end. */
    release: () => {},
    /** Records the state entered, for the relay's cache of it (the only writer of that cache). */
    enterPhase: (_, _params: { phase: RelayConnectionPhase }) => {},
  },
  guards: {
    isIdentityRequired: ({ context }) => context.identityRequired,
    provesIdentity: (_, params: { proves: boolean }) => params.proves,
  },
  delays: {
    // Overridden by the relay with its helloTimeoutMs (§2.1).
    helloTimeout: 10_000,
  },
}).createMachine({
  id: 'relayConnection',
  context: ({ input }) => ({
    id: input.id,
    supportedVersions: input.supportedVersions,
    identityRequired: input.identityRequired ?? false,
    virtualIp: undefined,
    endReason: undefined,
    endMessage: undefined,
  }),
  initial: 'awaitingHello',
  on: {
    'transport.closed': {
      target: '.closed',
      actions: { type: 'recordEnd', params: { error: 'TransportClosed', message: 'connection closed' } },
    },
    'relay.shutdown': { target: '.closed', actions: fail('RelayShuttingDown', 'the relay is stopping') },
    'protocol.error': {
      target: '.closed',
      actions: [
        { type: 'recordEnd', params: ({ event }) => ({ error: event.error, message: event.message }) },
        { type: 'sendError', params: ({ event }) => ({ error: event.error, message: event.message }) },
        'closeTransport',
      ],
    },
    'packet.unexpected': {
      target: '.closed',
      actions: [
        { type: 'recordEnd', params: ({ event }) => ({ error: 'UnexpectedPacket', message: `unexpected ${event.name}` }) },
        { type: 'sendError', params: ({ event }) => ({ error: 'UnexpectedPacket', message: `unexpected ${event.name}` }) },
        'closeTransport',
      ],
    },
  },
  states: {
    // §2.1: Hello first, within the hello timeout.
    awaitingHello: {
      entry: { type: 'enterPhase', params: { phase: 'awaitingHello' } },
      after: { helloTimeout: { target: 'closed', actions: fail('HelloTimeout', 'no Hello in time') } },
      on: {
        'hello.received': [
          {
            guard: ({ context, event }) => !context.supportedVersions.includes(event.version),
            target: 'closed',
            actions: fail('UnsupportedVersion', 'unsupported protocol version'),
          },
          { guard: { type: 'provesIdentity', params: ({ event }) => ({ proves: event.proves === true }) }, target: 'proving' },
          {
            guard: 'isIdentityRequired',
            target: 'closed',
            actions: fail(
              'IdentityRequired',
              'this relay ties virtual IPs to identity keys (--identity-mode key): say Hello with version 2 and prove a key',
            ),
          },
          { target: 'registering' },
        ],
      },
    },
    // §2a: the client signs the relay's challenge with its identity key, within the hello timeout.
    proving: {
      entry: [{ type: 'enterPhase', params: { phase: 'proving' } }, 'sendChallenge'],
      after: { helloTimeout: { target: 'closed', actions: fail('HelloTimeout', 'no IdentityProof in time') } },
      on: {
        'identity.proven': { target: 'registering' },
        'identity.refused': {
          target: 'closed',
          actions: [
            { type: 'recordEnd', params: ({ event }) => ({ error: 'BadIdentityProof', message: event.message }) },
            { type: 'sendError', params: ({ event }) => ({ error: 'BadIdentityProof', message: event.message }) },
            'closeTransport',
          ],
        },
        'hello.received': { target: 'closed', actions: fail('UnexpectedPacket', 'second Hello') },
      },
    },
    // §2.2: the mapping must be durable before the client hears its address.
    registering: {
      entry: { type: 'enterPhase', params: { phase: 'registering' } },
      invoke: {
        src: 'allocateAddress',
        input: ({ context }) => ({ id: context.id }),
        onDone: [
          {
            guard: ({ event }) => event.output.ok,
            target: 'ready',
            actions: [
              {
                type: 'recordVirtualIp',
                params: ({ event }) => ({ virtualIp: event.output.ok ? event.output.virtualIp : 0 }),
              },
              { type: 'sendVirtualIp', params: ({ event }) => ({ virtualIp: event.output.ok ? event.output.virtualIp : 0 }) },
            ],
          },
          {
            target: 'closed',
            actions: [
              {
                type: 'recordEnd',
                params: ({ event }) =>
                  event.output.ok
                    ? { error: 'Internal', message: 'unreachable' }
                    : { error: event.output.error, message: event.output.message },
              },
              {
                type: 'sendError',
                params: ({ event }) =>
                  event.output.ok
                    ? { error: 'Internal', message: 'unreachable' }
                    : { error: event.output.error, message: event.output.message },
              },
              'closeTransport',
            ],
          },
        ],
        onError: { target: 'closed', actions: fail('StoreFailure', 'the address store failed') },
      },
      on: {
        'hello.received': { target: 'closed', actions: fail('UnexpectedPacket', 'second Hello') },
      },
    },
    ready: {
      entry: [{ type: 'enterPhase', params: { phase: 'ready' } }, emit({ type: 'client.connected' })],
      on: {
        'hello.received': { target: 'closed', actions: fail('UnexpectedPacket', 'second Hello') },
        // §4: silent past the keepalive timeout.
        'keepalive.timeout': { target: 'closed', actions: fail('KeepaliveTimeout', 'silent past the keepalive timeout') },
      },
    },
    closed: {
      type: 'final',
      entry: [{ type: 'enterPhase', params: { phase: 'closed' } }, 'release', emit({ type: 'client.disconnected' })],
    },
  },
});
