/**
 * Just enough of a PNG decoder to check a screenshot: size, and what its pixels look like.
 * Handles what Chromium writes (8-bit RGB or RGBA, not interlaced) and refuses anything else.
 */
import { inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width, height and a summary of the pixels. */
export interface PngSummary {
  width: number;
  height: number;
  /** Mean luminance (0–255, Rec. 601 weights) over every pixel. */
  meanLuminance: number;
  /** Distinct RGB colours, counted up to 10,000. */
  colours: number;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Decodes `png` and summarises it; throws on anything that is not a PNG this can read. */
export function summarisePng(png: Buffer): PngSummary {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG: bad signature');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colourType, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      if (depth !== 8 || interlace !== 0 || (colourType !== 2 && colourType !== 6)) {
        throw new Error(`unsupported PNG: depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
      }
      channels = colourType === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  if (channels === 0) throw new Error('not a PNG: no IHDR');
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data is ${raw.length} bytes, expected ${height * (stride + 1)}`);
  let previous = Buffer.alloc(stride);
  let luminance = 0;
  const colours = new Set<number>();
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    if (filter > 4) throw new Error(`bad PNG filter ${filter} on line ${y}`);
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const left = i >= channels ? line[i - channels]! : 0;
      const up = previous[i]!;
      let predictor = 0;
      if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) predictor = paeth(left, up, i >= channels ? previous[i - channels]! : 0);
      line[i] = (line[i]! + predictor) & 0xff;
    }
    for (let i = 0; i < stride; i += channels) {
      const [r, g, b] = [line[i]!, line[i + 1]!, line[i + 2]!];
      luminance += 0.299 * r + 0.587 * g + 0.114 * b;
      if (colours.size < 10_000) colours.add((r << 16) | (g << 8) | b);
    }
    previous = line;
  }
  return { width, height, meanLuminance: luminance / (width * height), colours: colours.size };
}
