/**
 * The machines' effects (`.provide()`), and the start of each actor: given the relay's clock,
 * its emitted events forwarded to the bus with their payloads, so the machines never hold the
 * bus. Provided actions find their table entry by the id in the machine's context.
 */
import { createActor, fromPromise, type AnyActorRef } from 'xstate';
import { randomBytes } from 'node:crypto';
import { CHALLENGE_BYTES, ConnectionStatus, CloseReason, ErrorCode, FailureReason, IDENTITY_PROTOCOL_VERSION, PROTOCOL_VERSION, PacketType } from '../../protocol/index.ts';
import { relayConnectionMachine, type AllocationResult, type RelayConnectionErrorName } from '../../machines/relay-connection.machine.ts';
import { socketPairMachine } from '../../machines/socket-pair.machine.ts';
import { statusRequestMachine } from '../../machines/status-request.machine.ts';
import { childrenParentLogic } from '../../machines/children-parent.ts';
import type { RelayContext, RelayMachines } from './context.ts';
import type { PendingStatus } from './pending.ts';
import { releaseConnection, releasePair } from './release.ts';
import { reportHandshake, requestFailed, sendPacket } from './replies.ts';
import { PROVING_MAX_FRAME_BYTES, announcePeerKey, storeKeyOf } from './identity.ts';

/** Fatal conditions caused by what a client sent (reported as client.protocolError). */
const PROTOCOL_ERRORS: ReadonlySet<RelayConnectionErrorName> = new Set([
  'UnsupportedVersion',
  'MalformedFrame',
  'FrameTooLarge',
  'UnknownPacketType',
  'HelloTimeout',
  'UnexpectedPacket',
  'FrameTimeout',
]);

/** A machine's state value as one dotted name ('active.endedByA'). */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const [key, inner] = Object.entries(value)[0] ?? ['?', undefined];
    return inner === undefined ? key : `${key}.${stateName(inner)}`;
  }
  return String(value);
}

/** The relay's machines with their effects, and how each actor starts. */
export function createRelayMachines(ctx: RelayContext): RelayMachines {
  const o = ctx.options;
  // One actor system for all of this relay's actors (machines/children-parent.ts): ~2 KB less per
  // client than a root actor each (bench test 5). Inspection is the system's: set here, it sees
  // every child.
  const parent = createActor(childrenParentLogic, { inspect: o.inspect, clock: ctx.clock });
  parent.start();
  const connectionMachine = relayConnectionMachine.provide({
    delays: { helloTimeout: o.helloTimeoutMs },
    actors: {
      allocateAddress: fromPromise<AllocationResult, { id: number }>(async ({ input }) => {
        const conn = ctx.conns.get(input.id);
        if (conn === undefined) return { ok: false, error: 'StoreFailure', message: 'connection gone' };
        try {
          // §2.2: resolves only once the mapping is fsynced.
          return { ok: true, virtualIp: await o.store.findOrAllocate(storeKeyOf(ctx, conn)) };
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          ctx.log.error({ err: error, clientId: conn.id, realIp: conn.realIp }, 'address store failed');
          return code === 'ERR_ADDRESS_SPACE_EXHAUSTED'
            ? { ok: false, error: 'AddressSpaceExhausted', message: (error as Error).message }
            : { ok: false, error: 'StoreFailure', message: 'the address store could not record the mapping' };
        }
      }),
    },
    actions: {
      enterPhase: ({ context }, { phase }) => {
        const conn = ctx.conns.get(context.id);
        if (conn !== undefined) conn.phase = phase;
      },
      // §2a: fresh random bytes per connection, so a proof can never be replayed.
      sendChallenge: ({ context }) => {
        const conn = ctx.conns.get(context.id);
        if (conn === undefined || conn.phase === 'closed') return;
        conn.challenge = randomBytes(CHALLENGE_BYTES);
        conn.reader.maxFrameBytes = PROVING_MAX_FRAME_BYTES;
        conn.out.packet({ type: PacketType.Challenge, nonce: conn.challenge });
      },
      // §2.2–2.3: the connection joins its virtual host and hears its address.
      sendVirtualIp: ({ context }, { virtualIp }) => {
        const conn = ctx.conns.get(context.id);
        if (conn === undefined || conn.phase === 'closed') return;
        const host = ctx.hosts.join(conn, virtualIp);
        conn.reader.maxFrameBytes = o.maxFrameBytes;
        conn.lastSeen = conn.lastPingAt = ctx.clock.now();
        conn.out.packet({
          type: PacketType.VirtualIp,
          // The version the client said Hello with: a version-2 client proved a key (§2a).
          version: conn.publicKey === undefined ? PROTOCOL_VERSION : IDENTITY_PROTOCOL_VERSION,
          ip: virtualIp,
          keepaliveIntervalMs: o.keepaliveIntervalMs,
          keepaliveTimeoutMs: o.keepaliveTimeoutMs,
          maxFrameBytes: o.maxFrameBytes,
        });
        ctx.log.info({ clientId: conn.id, realIp: conn.realIp, virtualIp: host.ipText }, 'client connected');
      },
      sendError: ({ context }, { error, message }) => {
        const conn = ctx.conns.get(context.id);
        if (conn === undefined || conn.phase === 'closed') return;
        conn.reader.stop();
        // Reported here, where both the actor's and the machine's findings pass.
        if (PROTOCOL_ERRORS.has(error)) {
          ctx.counters.protocolErrors++;
          ctx.log.warn({ clientId: conn.id, realIp: conn.realIp, code: error, reason: message }, 'protocol error, disconnecting');
          ctx.bus.emit('client.protocolError', { clientId: conn.id, realIp: conn.realIp, code: error, message });
        }
        conn.out.packet({ type: PacketType.Error, code: ErrorCode[error], message });
      },
      closeTransport: ({ context }) => ctx.conns.get(context.id)?.endTransport(),
      release: ({ context }) => {
        const conn = ctx.conns.get(context.id);
        if (conn !== undefined) releaseConnection(ctx, conn, context.endReason ?? 'TransportClosed', context.endMessage ?? '');
      },
    },
  });

  const pairMachine = socketPairMachine.provide({
    delays: { requestTimeout: o.requestTimeoutMs },
    actions: {
      enterPhase: ({ context }, { phase }) => ctx.pairs.get(context.id)?.enterPhase(phase),
      activate: ({ context }) => {
        const pair = ctx.pairs.get(context.id);
        if (pair !== undefined) pair.openedAt = pair.lastActivity = ctx.clock.now();
      },
      forwardResponse: ({ context }) => {
        const pair = ctx.pairs.get(context.id);
        if (pair === undefined) return;
        if (pair.responseStatus === ConnectionStatus.Accepted) announcePeerKey(ctx, pair.a, pair.b, pair.id);
        sendPacket(ctx, pair.a.id, {
          type: PacketType.SocketConnectionResponse,
          requestId: pair.originRequestId,
          connectionId: pair.responseStatus === ConnectionStatus.Accepted ? pair.id : 0,
          status: pair.responseStatus,
        });
      },
      failRequest: ({ context }, { reason }) => {
        const pair = ctx.pairs.get(context.id);
        if (pair === undefined) return;
        ctx.pending.settleConnect(pair);
        requestFailed(ctx, pair.a.id, pair.originRequestId, FailureReason[reason], 'connect');
        reportHandshake(ctx, {
          kind: 'connect',
          clientId: pair.a.id,
          source: pair.aAddress,
          destination: pair.bAddress,
          outcome: reason === 'Timeout' ? 'timeout' : 'target-disconnected',
          durationMs: ctx.clock.now() - pair.requestedAt,
        });
      },
      forwardEnd: ({ context }, { to }) => {
        const pair = ctx.pairs.get(context.id);
        if (pair === undefined) return;
        pair.lastActivity = ctx.now;
        sendPacket(ctx, pair[to].id, { type: PacketType.SocketEnd, connectionId: pair.id });
      },
      notify: ({ context }, { to, reason }) => {
        const pair = ctx.pairs.get(context.id);
        if (pair === undefined) return;
        for (const end of to) sendPacket(ctx, pair[end].id, { type: PacketType.SocketClosed, connectionId: pair.id, reason: CloseReason[reason] });
      },
      release: ({ context }) => {
        const pair = ctx.pairs.get(context.id);
        if (pair !== undefined) releasePair(ctx, pair, context.endReason ?? 'Error');
      },
    },
  });

  // Settled entries leave the pending table before the answer is written, so actions find
  // theirs by actor rather than by request id.
  const statusEntries = new WeakMap<AnyActorRef, PendingStatus>();
  const statusMachine = statusRequestMachine.provide({
    delays: { requestTimeout: o.requestTimeoutMs },
    actions: {
      settle: ({ self }) => {
        const entry = statusEntries.get(self);
        if (entry !== undefined) ctx.pending.settleStatus(entry);
      },
      forwardAnswer: ({ self }, { status }) => {
        const entry = statusEntries.get(self);
        if (entry === undefined) return;
        sendPacket(ctx, entry.origin.id, { type: PacketType.SocketStatusResponse, requestId: entry.originRequestId, status });
      },
      failRequest: ({ self }, { reason }) => {
        const entry = statusEntries.get(self);
        if (entry !== undefined) requestFailed(ctx, entry.origin.id, entry.originRequestId, FailureReason[reason], 'status');
      },
    },
  });

  return {
    startConnection(conn) {
      conn.actor = createActor(connectionMachine, {
        input: {
          id: conn.id,
          supportedVersions: [PROTOCOL_VERSION, IDENTITY_PROTOCOL_VERSION],
          // A stand-in admitted with a key its own relay verified (admitStream) has nothing left to prove.
          identityRequired: o.identityMode === 'key' && conn.publicKey === undefined,
        },
        parent,
        clock: ctx.clock,
      });
      conn.actor.on('client.connected', () =>
        ctx.bus.emit('client.connected', { id: conn.id, realIp: conn.realIp, virtualIp: conn.host!.ipText, at: conn.lastSeen }),
      );
      conn.actor.on('client.disconnected', () => {
        if (conn.closedEvent !== undefined) ctx.bus.emit('client.disconnected', conn.closedEvent);
      });
      conn.actor.start();
    },
    startPair(pair) {
      const actor = createActor(pairMachine, { input: { id: pair.id }, parent, clock: ctx.clock });
      pair.actor = actor;
      actor.on('pair.opened', () => ctx.bus.emit('pair.opened', { id: pair.id, a: pair.aAddress, b: pair.bAddress, at: pair.openedAt }));
      actor.on('pair.closed', () => {
        if (pair.closedEvent !== undefined) ctx.bus.emit('pair.closed', pair.closedEvent);
      });
      actor.subscribe((snapshot) => {
        const state = stateName(snapshot.value);
        // After release the pair is gone: a late 'finished' must not bring it back to listeners.
        if (state === pair.state || ctx.pairs.get(pair.id) !== pair) return;
        pair.state = state;
        ctx.bus.emit('pair.stateChanged', { id: pair.id, state });
      });
      actor.start();
    },
    startStatusRequest(fields) {
      const actor = createActor(statusMachine, { input: { relayId: fields.relayId }, parent, clock: ctx.clock });
      const entry: PendingStatus = { ...fields, actor };
      statusEntries.set(actor, entry);
      actor.on('handshake.completed', ({ outcome }) =>
        reportHandshake(ctx, {
          kind: 'status',
          clientId: entry.origin.id,
          source: entry.source,
          destination: entry.destination,
          outcome,
          durationMs: ctx.clock.now() - entry.startedAt,
        }),
      );
      actor.start();
      return entry;
    },
  };
}
