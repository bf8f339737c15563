/**
 * What the relay's rooms share, injected into each of them instead of the whole server: options,
 * log, bus, control channel, counters, clock, the tables and the write path's scope.
 */
import type { Packet } from '../../protocol/index.ts';
import type { Logger } from '../logger.ts';
import type { WindowBudget } from './window-budget.ts';
import type { RelayBus } from './relay-events.ts';
import type { RelayClock, ResolvedRelayOptions } from './relay-options.ts';
import type { RelayCounters } from './counters.ts';
import type { ControlBus } from './control-bus.ts';
import type { RecentCloses } from './recent-closes.ts';
import type { ReadBudget } from './read-budget.ts';
import type { WriteScope } from './outbound.ts';
import type { Connection } from './connection.ts';
import type { HostTable } from './hosts.ts';
import type { PairTable, Pair } from './pairs.ts';
import type { PendingStatus, PendingTable } from './pending.ts';
import type { DataPath } from './data-path.ts';
import type { DatagramPortTable } from './datagram-ports.ts';
import type { DatagramPath } from './datagram-path.ts';

/** Starts the machines' actors, each wired to its table entry and the bus (machines.ts). */
export interface RelayMachines {
  startConnection(conn: Connection): void;
  startPair(pair: Pair): void;
  startStatusRequest(entry: Omit<PendingStatus, 'actor'>): PendingStatus;
}

/** What every room is given: shared state and services, never the server itself. */
export interface RelayContext {
  readonly options: ResolvedRelayOptions;
  readonly log: Logger;
  /** Set-up and tear-down events for metrics and the dashboard (relay-events.ts). */
  readonly bus: RelayBus;
  /** Addressed messages between the relay's actors (control-bus.ts). */
  readonly control: ControlBus;
  readonly counters: RelayCounters;
  readonly clock: RelayClock;
  /** Live client connections by relay-local id, in the order they connected. */
  readonly conns: Map<number, Connection>;
  readonly hosts: HostTable;
  readonly pairs: PairTable;
  readonly pending: PendingTable;
  readonly recent: RecentCloses;
  /** Credit above the initial windows, relay-wide (§7). */
  readonly windowBudget: WindowBudget;
  readonly reading: ReadBudget;
  readonly scope: WriteScope;
  readonly machines: RelayMachines;
  readonly dataPath: DataPath;
  /** Datagram ports and per-host rate buckets (§10). */
  readonly datagrams: DatagramPortTable;
  /** Datagram frames: checked, stamped, written or dropped (§10). */
  readonly datagramPath: DatagramPath;
  /** Hands a decoded control packet to its handler (handlers/index.ts). */
  dispatch(conn: Connection, packet: Packet): void;
  /** The clock as read when the chunk or sweep under way began: one read per chunk, not per frame. */
  now: number;
}
