/**
 * The visible state of one virtual socket (the design text's Socket). A listener goes
 * idle → binding → bound → listening; a connector goes idle → binding → bound → connecting →
 * connected; an accepted socket starts connected. `connected` refines half-close
 * (docs/PROTOCOL.md §7): after both SocketEnds the connection is finished and closed.
 * Pure bookkeeping: the actor layer sends the events as the relay answers and the application
 * calls, and reads the snapshot to decide what a call may do. It is the only record of a
 * connection's lifecycle: the tags `readable` (the peer's data may still come) and `writable`
 * (send() is allowed) are what the data path asks, and `closed` is the end.
 */
import { assign, setup } from 'xstate';

export interface VirtualSocketMachineInput {
  /** True for a socket handed out by accept(): it starts connected. @default false */
  accepted?: boolean;
  /** Local virtual port (an accepted socket shares its listener's). */
  port?: number;
  /** Remote "ip:port" for an accepted socket. */
  remote?: string;
}

export interface VirtualSocketMachineContext {
  /** Local virtual port once bound (0 until then). */
  port: number;
  /** Remote "ip:port" once connecting or connected. */
  remote: string | undefined;
  /** Why the socket closed or the last operation failed. */
  error: { code: string; message: string } | undefined;
  /**
   * end() was called. Kept past `closed`, where the state alone no longer says it: a later end()
   * is then a no-op, and send() says the connection was ended rather than closed.
   */
  writeEnded: boolean;
}

export type VirtualSocketMachineEvent =
  | { type: 'socket.bind' }
  | { type: 'socket.bound'; port: number }
  | { type: 'socket.bind.failed'; code: string; message: string }
  | { type: 'socket.listen' }
  | { type: 'socket.connect'; remote: string }
  | { type: 'socket.connected' }
  | { type: 'socket.connect.failed'; code: string; message: string }
  /** The relay was lost while the client will reconnect: a bound socket must bind again. */
  | { type: 'socket.suspend' }
  /** end() was called: no new sends; SocketEnd goes out after the sends queued before it. */
  | { type: 'socket.end' }
  /** Our SocketEnd was written. */
  | { type: 'socket.end.sent' }
  /** The peer's SocketEnd arrived. */
  | { type: 'socket.end.received' }
  | { type: 'socket.close'; code?: string; message?: string };

/** `readable`: the peer's data may still come. `writable`: send() is allowed. */
export type VirtualSocketTag = 'readable' | 'writable';

export const virtualSocketMachine = setup({
  types: {
    context: {} as VirtualSocketMachineContext,
    events: {} as VirtualSocketMachineEvent,
    input: {} as VirtualSocketMachineInput,
    tags: {} as VirtualSocketTag,
  },
  actions: {
    recordError: assign({
      error: ({ event }) =>
        'code' in event && event.code !== undefined ? { code: event.code, message: event.message ?? event.code } : undefined,
    }),
    recordEnd: assign({ writeEnded: true }),
  },
  guards: {
    isAccepted: ({ context }) => context.remote !== undefined && context.port !== 0,
  },
}).createMachine({
  id: 'virtualSocket',
  context: ({ input }) => ({
    port: input.accepted ? (input.port ?? 0) : 0,
    remote: input.accepted ? input.remote : undefined,
    error: undefined,
    writeEnded: false,
  }),
  initial: 'idle',
  on: { 'socket.close': { target: '.closed', actions: 'recordError' } },
  states: {
    idle: {
      always: { guard: 'isAccepted', target: 'connected' },
      on: { 'socket.bind': 'binding' },
    },
    binding: {
      on: {
        'socket.bound': { target: 'bound', actions: assign({ port: ({ event }) => event.port, error: undefined }) },
        'socket.bind.failed': { target: 'idle', actions: 'recordError' },
      },
    },
    bound: {
      on: {
        'socket.listen': 'listening',
        'socket.connect': { target: 'connecting', actions: assign({ remote: ({ event }) => event.remote }) },
        'socket.suspend': 'rebinding',
      },
    },
    // After a reconnection the socket claims its port again; `resume` says where it goes back to.
    rebinding: {
      on: {
        'socket.bound': 'bound',
        'socket.bind.failed': { target: 'closed', actions: 'recordError' },
      },
    },
    listening: {
      on: { 'socket.suspend': 'relistening' },
    },
    relistening: {
      on: {
        'socket.bound': 'listening',
        'socket.bind.failed': { target: 'closed', actions: 'recordError' },
      },
    },
    connecting: {
      on: {
        'socket.connected': 'connected',
        'socket.connect.failed': { target: 'closed', actions: 'recordError' },
      },
    },
    connected: {
      initial: 'open',
      states: {
        open: {
          tags: ['readable', 'writable'],
          on: {
            'socket.end': { target: 'ending', actions: 'recordEnd' },
            'socket.end.sent': { target: 'writeEnded', actions: 'recordEnd' },
            'socket.end.received': 'readEnded',
          },
        },
        // end() was called; our SocketEnd waits for the sends queued before it. We may still read.
        ending: {
          tags: ['readable'],
          on: { 'socket.end.sent': 'writeEnded', 'socket.end.received': 'finishing' },
        },
        // We sent SocketEnd: we may still read until the peer ends.
        writeEnded: { tags: ['readable'], on: { 'socket.end.received': '#virtualSocket.closed' } },
        // The peer sent SocketEnd: we may still write until we end.
        readEnded: {
          tags: ['writable'],
          on: {
            'socket.end': { target: 'finishing', actions: 'recordEnd' },
            'socket.end.sent': { target: '#virtualSocket.closed', actions: 'recordEnd' },
          },
        },
        // Both ends are over, but our SocketEnd still waits for the sends before it (§7: the
        // pair is finished once both SocketEnds have passed).
        finishing: { on: { 'socket.end.sent': '#virtualSocket.closed' } },
      },
    },
    closed: { type: 'final' },
  },
});
