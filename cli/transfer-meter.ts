/**
 * What `alphanet nc` says about a transfer on stderr: a progress line, rewritten in place at most
 * PROGRESS_INTERVAL_MS apart, while stderr is a terminal and the transfer has run for
 * PROGRESS_AFTER_MS; and always one summary line at the end. stdout carries only the data.
 */

/** How often the progress line is rewritten: a few times a second, no more. */
export const PROGRESS_INTERVAL_MS = 250;
/** A transfer shorter than this shows no progress line, only the summary. */
export const PROGRESS_AFTER_MS = 1_000;

/** What the meter writes to: stderr, or a fake in specs. */
export interface MeterStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** "1.5 MiB", "512 B". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Bytes per second as "12.3 MiB/s" (0 B/s for no time at all). */
export function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(ms > 0 ? Math.round((bytes * 1000) / ms) : 0)}/s`;
}

/** Counts both directions of one transfer and reports them. */
export class TransferMeter {
  sent = 0;
  received = 0;
  readonly #stream: MeterStream;
  readonly #now: () => number;
  readonly #started: number;
  #lastDrawn = -Infinity;
  #drawn = false;
  #timer: NodeJS.Timeout | undefined;

  /** `now` is injectable so specs need no real time. */
  constructor(stream: MeterStream, now: () => number = () => performance.now()) {
    this.#stream = stream;
    this.#now = now;
    this.#started = now();
  }

  /** Redraws the progress line every PROGRESS_INTERVAL_MS (unref'd) while stderr is a terminal. */
  start(): this {
    if (this.#stream.isTTY) {
      this.#timer = setInterval(() => this.tick(), PROGRESS_INTERVAL_MS);
      this.#timer.unref();
    }
    return this;
  }

  /** Draws the progress line if stderr is a terminal, the transfer is long and the last draw is old enough. */
  tick(): void {
    const now = this.#now();
    if (!this.#stream.isTTY || now - this.#started < PROGRESS_AFTER_MS || now - this.#lastDrawn < PROGRESS_INTERVAL_MS) return;
    this.#lastDrawn = now;
    this.#drawn = true;
    const ms = now - this.#started;
    // \r and erase-to-end-of-line: the line is rewritten in place, never scrolls.
    this.#stream.write(`\r\x1b[K${formatBytes(this.sent)} sent, ${formatBytes(this.received)} received, ${formatRate(this.sent + this.received, ms)}`);
  }

  /** The summary: bytes each way, duration, rate. */
  summary(): string {
    const ms = this.#now() - this.#started;
    return `nc: ${this.sent} bytes sent, ${this.received} bytes received in ${(ms / 1000).toFixed(2)} s (${formatRate(this.sent + this.received, ms)})`;
  }

  /** Stops the progress line (clearing it) and writes the summary line. */
  finish(): void {
    clearInterval(this.#timer);
    this.#stream.write(`${this.#drawn ? '\r\x1b[K' : ''}${this.summary()}\n`);
  }
}
