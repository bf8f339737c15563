/**
 * The context every room of the relay is given (context.ts), made once per relay: the tables,
 * budgets and paths, and the control channel routed to the actors the tables hold. An unknown
 * id is a message to an actor already gone: dropped, as a write to a closed socket is.
 */
import type { ResolvedRelayOptions } from './relay-options.ts';
import type { RelayBus } from './relay-events.ts';
import type { RelayCounters } from './counters.ts';
import type { RelayContext } from './context.ts';
import { WindowBudget } from './window-budget.ts';
import { EmitterControlBus } from './control-bus.ts';
import { RecentCloses } from './recent-closes.ts';
import { ReadBudget } from './read-budget.ts';
import { WriteScope } from './outbound.ts';
import type { Connection } from './connection.ts';
import { HostTable } from './hosts.ts';
import { PairTable } from './pairs.ts';
import { PendingTable } from './pending.ts';
import { DataPath } from './data-path.ts';
import { DatagramPortTable } from './datagram-ports.ts';
import { DatagramPath } from './datagram-path.ts';
import { dispatch } from './handlers/index.ts';
import { createRelayMachines } from './machines.ts';

/** Builds the context every room is given, and routes the control channel to the tables. */
export function assembleContext(options: ResolvedRelayOptions, bus: RelayBus, counters: RelayCounters): RelayContext {
  const ctx = {
    options,
    log: options.logger,
    bus,
    control: new EmitterControlBus(),
    counters,
    clock: options.clock,
    conns: new Map<number, Connection>(),
    hosts: new HostTable(options, counters),
    pairs: new PairTable(options, counters),
    pending: new PendingTable(options, counters),
    recent: new RecentCloses(),
    windowBudget: new WindowBudget(),
    reading: new ReadBudget(options, counters),
    scope: new WriteScope(),
    now: options.clock.now(),
  } as Omit<RelayContext, 'machines' | 'dataPath' | 'datagrams' | 'datagramPath' | 'dispatch'> as RelayContext;
  const datagrams = new DatagramPortTable(options, counters);
  Object.assign(ctx, {
    machines: createRelayMachines(ctx),
    dataPath: new DataPath(ctx),
    datagrams,
    datagramPath: new DatagramPath(ctx, datagrams),
    dispatch: (conn: Connection, packet: Parameters<RelayContext['dispatch']>[1]) => dispatch(ctx, conn, packet),
  });
  ctx.control.subscribe('connection', ({ to, event }) => {
    const conn = ctx.conns.get(to.id);
    if (conn === undefined) return;
    if (event.type === 'packet.send') conn.out.packet(event.packet);
    else conn.actor.send(event);
  });
  ctx.control.subscribe('pair', ({ to, event }) => ctx.pairs.get(to.id)?.actor.send(event));
  ctx.control.subscribe('statusRequest', ({ to, event }) => {
    const entry = ctx.pending.get(to.id);
    if (entry?.kind === 'status') entry.actor.send(event);
  });
  return ctx;
}
