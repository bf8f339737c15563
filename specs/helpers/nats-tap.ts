/**
 * A loopback TCP proxy between one relay and its nats-server that reads what the relay publishes
 * (the NATS client protocol's PUB / HPUB, docs.nats.io "Client Protocol") and can do to it what
 * anyone on the cluster's NATS path could: record the payloads of cross-relay links, and flip
 * one bit in one of them. What the server sends the relay passes untouched.
 */
import type { Test } from 'tap';
import { loopbackProxy } from './loopback-proxy.ts';

/** Link subjects (actors/relay/cluster/nats-link.ts: `alphanet.link.<id>.<end>`). */
const LINK_SUBJECT = /^alphanet\.link\./;
/** A link message this large carries data frames; smaller ones may be credit, end or handshake records. */
export const FLIP_MIN_PAYLOAD_BYTES = 8 * 1024;
/**
 * Where the bit is flipped: this far before the end of a data message, so inside the payload of
 * its last ArbitraryData frame (a whole frame or a frame's tail; a TLS record is ≥ 22 bytes),
 * never in a link or frame header.
 */
const FLIP_FROM_END = 10;
const CRLF = Buffer.from('\r\n');

export interface NatsTap {
  /** `nats://127.0.0.1:PORT`: give it to the relay as --cluster. */
  url: string;
  /** Flips one bit of the next link data message the relay publishes; resolves once done. */
  flipNext(): Promise<void>;
  /** Every link payload byte the relay published so far (headers of the NATS protocol left out). */
  linkBytes(): Buffer;
}

export async function natsTap(t: Test, natsPort: number): Promise<NatsTap> {
  const recorded: Buffer[] = [];
  let flip: (() => void) | undefined;
  const port = await loopbackProxy(t, natsPort, (relay, nats) => {
    nats.pipe(relay);
    let pending: Buffer = Buffer.alloc(0);
    relay.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf(CRLF);
        if (end < 0) break;
        const line = pending.subarray(0, end).toString('latin1');
        const words = line.split(' ').filter((w) => w !== '');
        const op = (words[0] ?? '').toUpperCase();
        if (op !== 'PUB' && op !== 'HPUB') {
          nats.write(pending.subarray(0, end + 2));
          pending = pending.subarray(end + 2);
          continue;
        }
        const total = Number(words[words.length - 1]);
        const headerBytes = op === 'HPUB' ? Number(words[words.length - 2]) : 0;
        const size = end + 2 + total + 2;
        if (pending.length < size) break;
        const message = Buffer.from(pending.subarray(0, size));
        pending = pending.subarray(size);
        if (LINK_SUBJECT.test(words[1] ?? '')) {
          const payload = message.subarray(end + 2 + headerBytes, end + 2 + total);
          recorded.push(Buffer.from(payload));
          if (flip !== undefined && payload.length >= FLIP_MIN_PAYLOAD_BYTES) {
            payload[payload.length - FLIP_FROM_END] ^= 0x01;
            flip();
            flip = undefined;
          }
        }
        nats.write(message);
      }
    });
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    flipNext: () => new Promise<void>((resolve) => (flip = resolve)),
    linkBytes: () => Buffer.concat(recorded),
  };
}
