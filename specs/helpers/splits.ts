/**
 * Cutting a byte fixture every way a parser could receive it: a parser that keeps its state across
 * writes must give the same events for every cut as for the whole.
 */
import { splitAt } from '../../fuzz/bytes.ts';

/** Every way to cut `bytes` in two or three pieces, plus one byte at a time. */
export function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let i = 1; i < bytes.length; i++) {
    out.push(splitAt(bytes, [i]).map((p) => Buffer.from(p)));
    for (let j = i + 1; j < bytes.length; j++) out.push(splitAt(bytes, [i, j]).map((p) => Buffer.from(p)));
  }
  return out;
}
