/**
 * Node's TLS 1.3 alone (issue 12, part 4): two TLSSockets with the e2e credentials over an
 * in-memory Duplex pair in the bench process, no relay and no library beneath. What they cost per
 * GB is the floor under the e2e lines: TLS over a JavaScript stream (node:tls wraps it in a
 * JSStreamSocket) encrypts, copies each record batch out to JavaScript, and decrypts 16 KiB
 * records into fresh buffers, whatever carries the records.
 */
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { generateIdentity } from '../../actors/client/index.ts';
import { credentialsFor } from '../../actors/client/e2e/certificate.ts';
import { BenchIntegrityError, withDeadline, type TransferResult } from '../load/drive.ts';
import { PHASE_DEADLINE_MS, type BenchContext } from './context.ts';
import { timedRuns, type RunFigures } from './measure.ts';

/** Two Duplexes joined back to back: what one writes the other reads, with backpressure. */
function duplexPair(): [Duplex, Duplex] {
  const waiting: Array<(() => void) | undefined> = [undefined, undefined];
  const ends: Duplex[] = [];
  for (const i of [0, 1]) {
    const other = 1 - i;
    ends.push(
      new Duplex({
        read() {
          const resume = waiting[other];
          waiting[other] = undefined;
          resume?.();
        },
        write(chunk: Buffer, _encoding, callback) {
          if (ends[other].push(chunk)) callback();
          else waiting[i] = callback;
        },
        final(callback) {
          ends[other].push(null);
          callback();
        },
      }),
    );
  }
  return [ends[0], ends[1]];
}

/** `bytes` from a TLS client to a TLS server over a fresh pair, in `writeBytes` writes. */
async function oneTransfer(bytes: number, writeBytes: number): Promise<TransferResult> {
  const [a, b] = duplexPair();
  const common = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false } as const;
  const [mine, theirs] = await Promise.all([credentialsFor(generateIdentity()), credentialsFor(generateIdentity())]);
  const client = tls.connect({ ...common, secureContext: mine.context, socket: a, checkServerIdentity: () => undefined });
  const server = new tls.TLSSocket(b, { ...common, secureContext: theirs.context, isServer: true, requestCert: true });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('secureConnect', () => resolve());
      client.once('error', reject);
    });
    const chunk = Buffer.alloc(writeBytes, 0x5a);
    const start = process.hrtime.bigint();
    const received = new Promise<void>((resolve, reject) => {
      let got = 0;
      server.on('data', (data: Buffer) => {
        got += data.length;
        if (got > bytes) reject(new BenchIntegrityError('ERR_BENCH_CORRUPT', `TLS alone: ${got} bytes arrived, ${bytes} were sent`));
        else if (got === bytes) resolve();
      });
      server.once('error', reject);
    });
    for (let sent = 0; sent < bytes; sent += writeBytes) {
      if (!client.write(chunk)) await new Promise((resolve) => client.once('drain', resolve));
    }
    await received;
    return { bytes, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
  } finally {
    client.destroy();
    server.destroy();
  }
}

/** Timed runs of TLS alone, as the other lines' (CPU of the bench process per GB). */
export function tlsAloneRuns(context: BenchContext, bytes: number, writeBytes: number): Promise<RunFigures> {
  return timedRuns(context, 'TLS 1.3 alone (in-memory pair)', [], () => withDeadline(oneTransfer(bytes, writeBytes), PHASE_DEADLINE_MS, 'TLS alone transfer'));
}
