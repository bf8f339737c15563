/**
 * The relay actors' control channel: typed messages addressed to a connection, a socket pair or
 * a status request, by kind and id. A connection hands a handshake step or its release to the
 * pair / request side as a message, and the pair side answers a connection (a packet to write to
 * it) the same way, so no actor calls a method on another's table entry.
 *
 * Why an interface: the messages are plain, addressed values (a kind, a number and a machine
 * event or a packet), so a second implementation can carry them between relay processes later
 * (one process owning a host's connections, another its pairs) without touching the actors.
 * This one is an eventemitter3 emitter inside one process.
 *
 * Delivery is synchronous and must stay so here: a reply written while a received chunk is
 * handled must join that chunk's corked writev, and must count against the backpressure of the
 * client whose bytes caused it (WriteScope.source in outbound.ts, docs/PROTOCOL.md §7). A
 * cross-process implementation gives up exactly that and must say how it bounds its queue.
 *
 * The data path (ArbitraryData, WindowUpdate) never passes here: it is a table lookup and a write.
 */
import { EventEmitter } from 'eventemitter3';
import type { Packet } from '../../protocol/index.ts';
import type { RelayConnectionEvent } from '../../machines/relay-connection.machine.ts';
import type { SocketPairEvent } from '../../machines/socket-pair.machine.ts';
import type { StatusRequestEvent } from '../../machines/status-request.machine.ts';

/** Write a control packet to the addressed connection, through its one write path. */
export interface SendPacket {
  type: 'packet.send';
  packet: Packet;
}

/** What each kind of addressee hears. */
export interface ControlEvents {
  /** A client connection (by its relay-local id): an event for its machine, or a packet to write. */
  connection: RelayConnectionEvent | SendPacket;
  /** A socket pair (by connection id): an event for its machine. */
  pair: SocketPairEvent;
  /** A forwarded status request (by the relay's request id): an event for its machine. */
  statusRequest: StatusRequestEvent;
}

/** A kind of addressee. */
export type ControlKind = keyof ControlEvents;

/** Who a message is for. */
export interface ControlAddress<K extends ControlKind = ControlKind> {
  kind: K;
  id: number;
}

/** One addressed, typed message. */
export type ControlMessage = { [K in ControlKind]: { to: ControlAddress<K>; event: ControlEvents[K] } }[ControlKind];

/** A listener for every message to addressees of one kind (it looks the id up in its table). */
export type ControlListener<K extends ControlKind> = (message: { to: ControlAddress<K>; event: ControlEvents[K] }) => void;

/** Sends addressed messages to the actors of one relay; see the file comment for the contract. */
export interface ControlBus {
  /** Delivers `message` to the subscriber of its kind before returning. */
  send(message: ControlMessage): void;
  /**
   * Hears every message to addressees of `kind`. One subscriber per kind: the table that owns
   * those actors (an unknown id is a message to an actor already gone, and is dropped there).
   */
  subscribe<K extends ControlKind>(kind: K, listener: ControlListener<K>): () => void;
}

type EmitterEvents = { [K in ControlKind]: [{ to: ControlAddress<K>; event: ControlEvents[K] }] };

/** The in-process ControlBus: one eventemitter3 emitter, synchronous. */
export class EmitterControlBus implements ControlBus {
  readonly #emitter = new EventEmitter<EmitterEvents>();

  send(message: ControlMessage): void {
    (this.#emitter.emit as (kind: ControlKind, message: ControlMessage) => boolean)(message.to.kind, message);
  }

  subscribe<K extends ControlKind>(kind: K, listener: ControlListener<K>): () => void {
    const on = this.#emitter.on as (kind: K, listener: ControlListener<K>) => unknown;
    const off = this.#emitter.off as (kind: K, listener: ControlListener<K>) => unknown;
    on.call(this.#emitter, kind, listener);
    return () => void off.call(this.#emitter, kind, listener);
  }
}
