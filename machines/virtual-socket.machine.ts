/**
 * The visible state of one virtual socket (the design text's Socket). A listener goes
 * idle → binding → bound → listening; a connector goes idle → binding → bound → connecting →
 * connected; an accepted socket starts connected. `connected` refines half-close
 * (docs/PROTOCOL.md §7): after both SocketEnds the connection is finished and closed.
 * Pure bookkeeping: the actor layer sends the events as the relay answers, and reads
 * `snapshot.value` to decide what a call may do.
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
  | { type: 'socket.end.sent' }
  | { type: 'socket.end.received' }
  | { type: 'socket.close'; code?: string; message?: string };

export const virtualSocketMachine = setup({
  types: {
    context: {} as VirtualSocketMachineContext,
    events: {} as VirtualSocketMachineEvent,
    input: {} as VirtualSocketMachineInput,
  },
  actions: {
    recordError: assign({
      error: ({ event }) =>
        'code' in event && event.code !== undefined ? { code: event.code, message: event.message ?? event.code } : undefined,
    }),
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
          on: { 'socket.end.sent': 'writeEnded', 'socket.end.received': 'readEnded' },
        },
        // We sent SocketEnd: we may still read until the peer ends.
        writeEnded: { on: { 'socket.end.received': '#virtualSocket.closed' } },
        // The peer sent SocketEnd: we may still write until we end.
        readEnded: { on: { 'socket.end.sent': '#virtualSocket.closed' } },
      },
    },
    closed: { type: 'final' },
  },
});
