/**
 * The datagram path (docs/PROTOCOL.md §10): a Datagram frame is checked, stamped in place and
 * written, or dropped and counted. Like the stream data path (data-path.ts) it decodes nothing,
 * starts no machine, emits no event and allocates nothing of its own per datagram: three Map
 * lookups, a token-bucket sum, a 4-byte overwrite of the frame the reader handed out, and the
 * write. Unlike it, it never holds a frame and never pauses a source: a datagram for a
 * destination whose queue is at the datagram threshold is dropped, because for a game a late
 * packet is worthless and a held one would delay every packet behind it.
 *
 * A datagram that cannot be delivered is never answered (no amplification: a spoofed-looking
 * flood earns its sender nothing back), only counted in `counters.datagramsDropped`.
 */
import {
  DATAGRAM_DESTINATION_IP_OFFSET,
  DATAGRAM_DESTINATION_PORT_OFFSET,
  DATAGRAM_SOURCE_IP_OFFSET,
  DATAGRAM_SOURCE_PORT_OFFSET,
  readU16,
  readU32,
  writeU32,
} from '../../protocol/index.ts';
import type { RelayCounters } from './counters.ts';
import type { Connection } from './connection.ts';
import type { RelayContext } from './context.ts';
import type { DatagramPortTable } from './datagram-ports.ts';

/** Forwards or drops datagrams (see the file comment). */
export class DatagramPath {
  readonly #ctx: RelayContext;
  readonly #ports: DatagramPortTable;
  readonly #counters: RelayCounters;
  readonly #queueBytes: number;
  readonly #maxQueuedBytes: number;

  constructor(ctx: RelayContext, ports: DatagramPortTable) {
    this.#ctx = ctx;
    this.#ports = ports;
    this.#counters = ctx.counters;
    this.#queueBytes = ctx.options.datagramQueueBytes;
    this.#maxQueuedBytes = ctx.options.maxQueuedBytes;
  }

  /** One Datagram frame from `src` (its size already judged by the frame header, §1). */
  relay(src: Connection, frame: Uint8Array): void {
    const counters = this.#counters;
    const dropped = counters.datagramsDropped;
    // The source port must be one this connection holds (§10): a client cannot speak as another port.
    const holder = this.#ports.held(src);
    if (holder === undefined || !holder.ports.has(readU16(frame, DATAGRAM_SOURCE_PORT_OFFSET))) {
      dropped.unboundSource++;
      return;
    }
    if (!this.#ports.rates.take(holder.bucket, frame.length, this.#ctx.now)) {
      dropped.rateLimited++;
      return;
    }
    const dst = this.#ports.holder(readU32(frame, DATAGRAM_DESTINATION_IP_OFFSET), readU16(frame, DATAGRAM_DESTINATION_PORT_OFFSET));
    if (dst === undefined || dst.phase !== 'ready') {
      // Not answered: a reply to every datagram for a closed port would be an amplifier.
      dropped.notBound++;
      return;
    }
    // Judged before the write, so a destination's queue never passes the threshold by more than one datagram.
    if (dst.out.countQueue() >= this.#queueBytes || counters.queuedBytes >= this.#maxQueuedBytes) {
      dropped.congested++;
      return;
    }
    // The stamp (§10): the source ip is the sender's own virtual IP, whatever it wrote.
    writeU32(frame, DATAGRAM_SOURCE_IP_OFFSET, src.host!.ip);
    counters.datagramsRelayed++;
    counters.datagramBytesRelayed += frame.length;
    // No source given: a datagram never pauses its sender (§10).
    dst.out.write(frame, undefined);
  }
}
