/**
 * The end-to-end transport's AEAD alone (issue 12, part 4): the same bytes sealed into records
 * (AES-256-GCM, actors/client/e2e/sealing.ts), cut out of the byte stream again
 * (records.ts) and opened, in one thread of the bench process, with no relay, no connection and no
 * handshake. What that costs per GB is the floor under the e2e lines: both ends' encryption, and
 * nothing else.
 */
import { randomBytes } from 'node:crypto';
import { RecordReader, RecordType, MAX_RECORD_PLAINTEXT_BYTES } from '../../actors/client/e2e/records.ts';
import { Opener, Sealer, transportKeys } from '../../actors/client/e2e/sealing.ts';
import { BenchIntegrityError, withDeadline, type TransferResult } from '../load/drive.ts';
import { PHASE_DEADLINE_MS, type BenchContext } from './context.ts';
import { timedRuns, type RunFigures } from './measure.ts';

/** `bytes` sealed and opened in writes of `writeBytes` (each at most one 64 KiB record). */
async function oneTransfer(bytes: number, writeBytes: number): Promise<TransferResult> {
  const key = transportKeys(randomBytes(32), randomBytes(32), randomBytes(64), true).send;
  const sealer = new Sealer(key);
  const opener = new Opener(key);
  const reader = new RecordReader();
  const chunk = Buffer.alloc(writeBytes, 0x5a);
  const start = process.hrtime.bigint();
  let got = 0;
  for (let sent = 0; sent < bytes; sent += writeBytes) {
    for (let offset = 0; offset < chunk.length; offset += MAX_RECORD_PLAINTEXT_BYTES) {
      reader.push(sealer.seal(RecordType.Data, chunk.subarray(offset, offset + MAX_RECORD_PLAINTEXT_BYTES)));
      for (let record = reader.next(); record !== undefined; record = reader.next()) {
        for (const piece of opener.open(record.head, record.pieces)) got += piece.length;
      }
    }
  }
  if (got !== bytes) throw new BenchIntegrityError('ERR_BENCH_CORRUPT', `AEAD alone: ${got} bytes opened, ${bytes} were sealed`);
  return { bytes, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Timed runs of the AEAD alone, as the other lines' (CPU of the bench process per GB). */
export function aeadAloneRuns(context: BenchContext, bytes: number, writeBytes: number): Promise<RunFigures> {
  return timedRuns(context, 'AEAD alone (seal and open, one thread)', [], () => withDeadline(oneTransfer(bytes, writeBytes), PHASE_DEADLINE_MS, 'AEAD alone'));
}
