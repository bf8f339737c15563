/**
 * The data path (docs/PROTOCOL.md §7): ArbitraryData and WindowUpdate. Each frame is a Map
 * lookup, a sender check, a window count and a write of the received frame bytes unchanged. It
 * reads the pair's cached machine state (Pair.open, aEnded, bEnded) and never sends a machine
 * an event except for a violation, never emits on the bus (its counts are plain counters) and
 * never goes through the control channel: at a few hundred thousand frames a second an event
 * object, a listener call or a closure per frame is measurable relay CPU (docs/BENCHMARKS.md).
 */
import {
  CloseReason,
  DATA_FRAME_HEAD_BYTES,
  MAX_WINDOW_BYTES,
  PacketType,
  readConnectionId,
  readWindowUpdateBytes,
} from '../../protocol/index.ts';
import type { RelayCounters } from './counters.ts';
import type { WindowBudget } from './window-budget.ts';
import type { ControlBus } from './control-bus.ts';
import type { Connection } from './connection.ts';
import type { PairTable } from './pairs.ts';
import type { RelayContext } from './context.ts';

/** Forwards data frames between the ends of open pairs (see the file comment for why it is kept apart). */
export class DataPath {
  readonly #pairs: PairTable;
  readonly #counters: RelayCounters;
  readonly #budget: WindowBudget;
  readonly #control: ControlBus;
  readonly #ctx: RelayContext;

  constructor(ctx: RelayContext) {
    this.#ctx = ctx;
    this.#pairs = ctx.pairs;
    this.#counters = ctx.counters;
    this.#budget = ctx.windowBudget;
    this.#control = ctx.control;
  }

  /** A violation ends the pair; rare, so it goes to the pair's machine as a message. */
  #violation(id: number, reason: 'ProtocolViolation' | 'FlowControlViolation'): void {
    this.#control.send({ to: { kind: 'pair', id }, event: { type: 'violation', reason } });
  }

  /** Returns false when the frame must wait for its destination to drain (the reader holds it). */
  relayData(src: Connection, id: number, frameBytes: number, frame: Uint8Array | readonly Uint8Array[]): boolean | void {
    const pair = this.#pairs.get(id);
    if (pair === undefined || !pair.open || (pair.a !== src && pair.b !== src)) {
      // Not forwarded: the sender is not an end of an active pair (§7).
      src.out.packet({ type: PacketType.SocketClosed, connectionId: id, reason: CloseReason.ProtocolViolation });
      return;
    }
    // Before anything is counted: a held frame comes through here again when it is resumed.
    if ((pair.a === src ? pair.b : pair.a).out.mustHold(src)) {
      this.#counters.framesIn--; // counted again when it is delivered again
      return false;
    }
    const payload = frameBytes - DATA_FRAME_HEAD_BYTES;
    let dst: Connection;
    let released: number;
    if (pair.a === src) {
      if (pair.aEnded) return this.#violation(id, 'ProtocolViolation');
      if (pair.creditAToB < payload) return this.#violation(id, 'FlowControlViolation');
      released = this.#budget.spent(id, 0, pair.creditAToB, payload);
      pair.creditAToB += released - payload;
      pair.bytesAToB += payload;
      dst = pair.b;
    } else {
      if (pair.bEnded) return this.#violation(id, 'ProtocolViolation');
      if (pair.creditBToA < payload) return this.#violation(id, 'FlowControlViolation');
      released = this.#budget.spent(id, 1, pair.creditBToA, payload);
      pair.creditBToA += released - payload;
      pair.bytesBToA += payload;
      dst = pair.a;
    }
    pair.lastActivity = this.#ctx.now;
    this.#counters.framesRelayed++;
    this.#counters.bytesRelayed += frameBytes;
    dst.out.write(frame, src);
    // Credit the receiver granted while the budget was full, passed on now that data made room (§7).
    if (released > 0) src.out.packet({ type: PacketType.WindowUpdate, connectionId: id, bytes: released });
  }

  relayWindowUpdate(src: Connection, frame: Uint8Array): void {
    const id = readConnectionId(frame);
    const pair = this.#pairs.get(id);
    if (pair === undefined || !pair.open || (pair.a !== src && pair.b !== src)) {
      src.out.packet({ type: PacketType.SocketClosed, connectionId: id, reason: CloseReason.ProtocolViolation });
      return;
    }
    const bytes = readWindowUpdateBytes(frame);
    // The grantor is the receiver of the other direction. Its window may grow to MAX_WINDOW_BYTES,
    // never past it, counting what the relay still holds for it (§7).
    const direction = pair.a === src ? 1 : 0;
    const credit = direction === 1 ? pair.creditBToA : pair.creditAToB;
    if (credit + this.#budget.heldBytes(id, direction) + bytes > MAX_WINDOW_BYTES) {
      return this.#violation(id, 'FlowControlViolation');
    }
    // Above the initial window, credit comes out of the relay-wide budget; what does not fit is held.
    const now = bytes === 0 ? 0 : this.#budget.grant(id, direction, credit, bytes);
    if (direction === 1) pair.creditBToA += now;
    else pair.creditAToB += now;
    pair.lastActivity = this.#ctx.now;
    this.#counters.framesRelayed++;
    this.#counters.bytesRelayed += frame.length;
    const dst = pair.a === src ? pair.b : pair.a;
    if (now === bytes) dst.out.write(frame, src);
    else if (now > 0) dst.out.packet({ type: PacketType.WindowUpdate, connectionId: id, bytes: now });
  }
}
