/**
 * A turn's link messages as one buffer of NATS `PUB` commands, handed to nats.js's outbound queue
 * as it is (docs/CLUSTER.md "Cross-relay bulk"). Published one by one, each message is queued as
 * three pieces (its command line, its payload, CRLF) that nats.js joins at its flush into a new,
 * zero-filled buffer: with the link's own copy of the bytes into its messages, a byte crossing a
 * sending relay was copied twice and zeroed once, and the two fresh buffers per batch kept V8's
 * collector busy (perf, the sending relay: memmove 10 %, memset 5 %, marking and sweeping ~15 %).
 * Written here once, in the form `publish()` writes, the batch is the outbound queue's only piece,
 * which nats.js sends without joining anything.
 *
 * This reaches one internal of nats.js (3.x): its protocol handler's `sendCommand(bytes)`, the call
 * `publish()` itself ends in. Where it is missing, or the connection is not one of nats.js's
 * (a test double), {@link pubBatcher} gives undefined and the link publishes message by message.
 */
import type { NatsConnection } from '@nats-io/transport-node';

const CRLF_0 = 13;
const CRLF_1 = 10;

/** What of nats.js's connection this module uses; see the file comment. */
interface ProtocolInternals {
  sendCommand(command: Uint8Array): void;
  noMorePublishing: boolean;
  outMsgs: number;
  outBytes: number;
}

/** Writes the PUB commands of one subject into one buffer, then queues it. */
export class PubBatch {
  readonly #nc: NatsConnection;
  readonly #protocol: ProtocolInternals;
  /** `PUB <subject> ` */
  readonly #prefix: Buffer;

  constructor(nc: NatsConnection, protocol: ProtocolInternals, subject: string) {
    this.#nc = nc;
    this.#protocol = protocol;
    // UTF-8, as nats.js writes a subject (and subscribes to it).
    this.#prefix = Buffer.from(`PUB ${subject} `, 'utf8');
  }

  /** Bytes a batch of `messages` messages holding `payloadBytes` in all takes (at most, digits counted high). */
  capacity(messages: number, payloadBytes: number, largestPayload: number): number {
    return messages * (this.#prefix.length + String(largestPayload).length + 4) + payloadBytes;
  }

  /**
   * Writes the command line of a `payloadBytes` message at `at` in `batch`, returning where its
   * payload goes; the caller writes the payload there and then calls {@link endMessage}.
   */
  startMessage(batch: Buffer, at: number, payloadBytes: number): number {
    this.#prefix.copy(batch, at);
    at += this.#prefix.length;
    at += batch.write(String(payloadBytes), at, 'latin1');
    batch[at++] = CRLF_0;
    batch[at++] = CRLF_1;
    return at;
  }

  /** Ends a message's payload at `at`; returns where the next message starts. */
  endMessage(batch: Buffer, at: number): number {
    batch[at++] = CRLF_0;
    batch[at++] = CRLF_1;
    return at;
  }

  /**
   * Queues the first `length` bytes of `batch` (`messages` messages, `payloadBytes` of payload, the
   * largest `largestPayload`), as publish() would: with its checks, which throw and queue nothing.
   */
  send(batch: Buffer, length: number, messages: number, payloadBytes: number, largestPayload: number): void {
    // Buffer writes past the end are dropped silently: a batch sized short would send a broken stream.
    if (length > batch.length) throw new RangeError(`a PUB batch of ${length} bytes overran its ${batch.length}-byte buffer`);
    if (this.#nc.isClosed()) throw new Error('NATS connection closed');
    if (this.#protocol.noMorePublishing) throw new Error('NATS connection draining');
    // A server that allows less (a link made while nats.js had no server info) would close the
    // whole connection on a larger message; refused here, only the one link is reset.
    const maxPayload = this.#nc.info?.max_payload;
    if (maxPayload !== undefined && largestPayload > maxPayload) {
      throw new Error(`a ${largestPayload}-byte message is over the NATS server's max_payload (${maxPayload})`);
    }
    this.#protocol.outMsgs += messages;
    this.#protocol.outBytes += payloadBytes;
    this.#protocol.sendCommand(length === batch.length ? batch : batch.subarray(0, length));
  }
}

/** A batcher for `subject` on `nc`, or undefined where nats.js's internals are not as expected. */
export function pubBatcher(nc: NatsConnection, subject: string): PubBatch | undefined {
  const protocol = (nc as unknown as { protocol?: Partial<ProtocolInternals> }).protocol;
  if (protocol === undefined || typeof protocol.sendCommand !== 'function' || typeof protocol.noMorePublishing !== 'boolean') return undefined;
  if (typeof protocol.outMsgs !== 'number' || typeof protocol.outBytes !== 'number') return undefined;
  return new PubBatch(nc, protocol as ProtocolInternals, subject);
}
