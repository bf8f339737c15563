/**
 * Pipelined writes to JetStream KV buckets (docs/CLUSTER.md "Figures"). `kv.put()` of the client
 * library is a request per write: a reply subscription entry, a timer and, in nats.js 3.4, an
 * Error with a stack trace built on every successful reply (RequestOne.cancel); and each write
 * made from its own socket callback leaves in its own socket write. Under a burst of new clients
 * (an assignment create and a presence put each) that was a third of a relay's CPU.
 *
 * Here writes made in one turn of the event loop are published together at the next check phase
 * (one socket write for all of them), every acknowledgement arrives on one subscription of this
 * writer, and one timer sweeps writes that were never acknowledged. A write still resolves only
 * once JetStream acknowledged it: a create refused because the key holds a value rejects with the
 * same JetStreamApiError the library gives (isKeyTaken in nats-kv-store.ts).
 *
 * A key of bucket B is written by publishing to `$KV.B.<key>`, as `kv.put()` does for a bucket of
 * the connection's own JetStream (no domain, no API prefix, not a mirror): the buckets the relays
 * create themselves (nats-bucket.ts).
 */
import { JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
import { createInbox, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** A write not acknowledged this long fails (the library's JetStream default). */
export const KV_WRITE_TIMEOUT_MS = 5_000;
/** How often unacknowledged writes are checked against their deadline. */
const SWEEP_INTERVAL_MS = 500;

/** `Nats-Expected-Last-Subject-Sequence: 0`: a create on a key never written (see nats-kv-store.ts). */
const CREATE_HEADERS = headers();
CREATE_HEADERS.set('Nats-Expected-Last-Subject-Sequence', '0');
/** A KV delete: a delete marker, as `kv.delete()` writes it. */
const DELETE_HEADERS = headers();
DELETE_HEADERS.set('KV-Operation', 'DEL');

export type KvWriteKind = 'put' | 'create' | 'delete';

interface Waiting {
  resolve: (sequence: number) => void;
  reject: (error: Error) => void;
  deadline: number;
}

interface Queued {
  subject: string;
  value: Uint8Array | string;
  headers: MsgHdrs | undefined;
  token: number;
}

interface PubAck {
  stream?: string;
  seq?: number;
  error?: { code: number; err_code: number; description: string };
}

export class KvWriter {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #sub: Subscription;
  readonly #waiting = new Map<number, Waiting>();
  #queue: Queued[] = [];
  #scheduled = false;
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #timeoutMs: number;

  /** @param timeoutMs a write not acknowledged this long fails; @default KV_WRITE_TIMEOUT_MS (5 s) */
  constructor(nc: NatsConnection, timeoutMs = KV_WRITE_TIMEOUT_MS) {
    this.#nc = nc;
    this.#timeoutMs = timeoutMs;
    this.#inbox = createInbox();
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (error, msg) => (error ? this.#failAll(error) : this.#onAck(msg)) });
  }

  /**
   * Writes `key` of `bucket`: a plain put, a create (refused with a JetStreamApiError if the key
   * was ever written), or a delete marker. Resolves with the stream sequence once acknowledged.
   */
  write(bucket: string, key: string, value: Uint8Array | string, kind: KvWriteKind = 'put'): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const token = this.#next++;
      this.#waiting.set(token, { resolve, reject, deadline: performance.now() + this.#timeoutMs });
      this.#queue.push({ subject: `$KV.${bucket}.${key}`, value, headers: kind === 'create' ? CREATE_HEADERS : kind === 'delete' ? DELETE_HEADERS : undefined, token });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
      this.#timer ??= setInterval(() => this.#sweep(), Math.min(SWEEP_INTERVAL_MS, this.#timeoutMs)).unref();
    });
  }

  /** Publishes what this turn queued, all in one go (nats.js sends them in one socket write). */
  #flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) {
      try {
        this.#nc.publish(item.subject, item.value, { reply: `${this.#inbox}.${item.token}`, headers: item.headers });
      } catch (error) {
        this.#settle(item.token, error as Error);
      }
    }
  }

  #onAck(msg: Msg): void {
    const token = Number(msg.subject.slice(this.#inbox.length + 1));
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      return this.#settle(token, new JetStreamError(`no JetStream stream took ${msg.subject} (no responders: is JetStream on, and the bucket there?)`));
    }
    let ack: PubAck;
    try {
      ack = msg.json<PubAck>();
    } catch {
      return this.#settle(token, new JetStreamError('JetStream answered a write with something that is not a publish acknowledgement'));
    }
    if (ack.error) return this.#settle(token, new JetStreamApiError(ack.error));
    if (typeof ack.seq !== 'number') return this.#settle(token, new JetStreamError('invalid ack response'));
    this.#settle(token, undefined, ack.seq);
  }

  #settle(token: number, error: Error | undefined, sequence = 0): void {
    const waiting = this.#waiting.get(token);
    if (waiting === undefined) return;
    this.#waiting.delete(token);
    if (error) waiting.reject(error);
    else waiting.resolve(sequence);
    if (this.#waiting.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const [token, waiting] of this.#waiting) {
      // Tokens are in write order, so are their deadlines: the first one still in time ends the sweep.
      if (waiting.deadline > now) break;
      this.#settle(token, new JetStreamError(`a KV write was not acknowledged within ${this.#timeoutMs} ms`));
    }
  }

  #failAll(error: Error): void {
    for (const token of [...this.#waiting.keys()]) this.#settle(token, error);
  }

  /** Writes waiting for their acknowledgement. */
  get pending(): number {
    return this.#waiting.size;
  }

  /** Stops taking acknowledgements; what still waits fails. */
  close(): void {
    this.#sub.unsubscribe();
    this.#failAll(new JetStreamError('the KV writer was closed'));
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
