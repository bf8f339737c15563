/**
 * A loopback TCP proxy between one client and the relay that reads the client's frames and does
 * to one ArbitraryData frame what an attacker on the path (or a lying relay) could: flip a byte,
 * send it twice, drop it, or swap it with the next; or drop the sealed end marker before a SocketEnd
 * (truncation), or send it twice ('append': bytes after the end marker), or pass only the first
 * half of a data frame and no data after it ('cut': the stream ends in the middle of a record).
 * The proxy connects to the relay from the client's own source address, so the relay gives the
 * client the same virtual IP as without it.
 */
import type { Test } from 'tap';
import { FrameDecoder, PacketType } from '../../protocol/index.ts';
import { END_RECORD_BYTES } from '../../actors/client/e2e/records.ts';
import { loopbackProxy } from './loopback-proxy.ts';

export type Tampering = 'flip' | 'replay' | 'drop' | 'reorder' | 'truncate' | 'append' | 'cut';

/** ArbitraryData payloads at least this long are sealed data, not the handshake's messages. */
export const TAMPER_MIN_PAYLOAD_BYTES = 4096;
const HEAD = 9;

export interface TamperingProxy {
  port: number;
  /** Resolves once the tampering was done. */
  done: Promise<void>;
  /** Every ArbitraryData payload byte the client sent, as the proxy saw it. */
  seen(): Buffer;
}

export async function tamperingProxy(t: Test, relayPort: number, tampering: Tampering): Promise<TamperingProxy> {
  let tampered = false;
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  const seen: Buffer[] = [];
  const port = await loopbackProxy(
    t,
    relayPort,
    (inbound, outbound) => {
      outbound.pipe(inbound);
      let armed = false;
      /** For 'cut': every data frame after the cut one is dropped. */
      let cutDone = false;
      /** For 'reorder': the frame held back until the next data frame has gone. */
      let held: Buffer | undefined;
      const decoder = new FrameDecoder(
        (type, frame) => {
          const copy = Buffer.from(frame);
          if (type !== PacketType.ArbitraryData) {
            outbound.write(copy);
            return;
          }
          const payloadBytes = copy.length - HEAD;
          seen.push(copy.subarray(HEAD));
          if (tampering === 'cut') {
            if (cutDone) return;
            if (payloadBytes < TAMPER_MIN_PAYLOAD_BYTES) {
              outbound.write(copy);
              return;
            }
            // The frame's first half only: its length field (type and body) says so.
            const half = copy.subarray(0, HEAD + Math.floor(payloadBytes / 2));
            half.writeUInt32BE(half.length - 4, 0);
            outbound.write(half);
            cutDone = true;
            tampered = true;
            markDone();
            return;
          }
          if (!tampered && (tampering === 'truncate' || tampering === 'append')) {
            if (payloadBytes >= TAMPER_MIN_PAYLOAD_BYTES) armed = true;
            else if (armed && payloadBytes === END_RECORD_BYTES) {
              tampered = true;
              markDone();
              if (tampering === 'truncate') return; // the end marker never arrives; the SocketEnd after it does
              outbound.write(copy); // the end marker, then the same 20 bytes again after it
            }
          } else if (held !== undefined) {
            outbound.write(copy);
            outbound.write(held);
            held = undefined;
            markDone();
            return;
          } else if (!tampered && payloadBytes >= TAMPER_MIN_PAYLOAD_BYTES) {
            tampered = true;
            if (tampering === 'reorder') {
              held = copy;
              return;
            }
            markDone();
            if (tampering === 'drop') return;
            if (tampering === 'flip') copy[HEAD + 100] ^= 0x01;
            if (tampering === 'replay') outbound.write(copy);
          }
          outbound.write(copy);
        },
        { maxFrameBytes: 16 * 1024 * 1024 },
      );
      inbound.on('data', (chunk: Buffer) => decoder.push(chunk));
    },
    { fromPeerAddress: true },
  );
  return { port, done, seen: () => Buffer.concat(seen) };
}
