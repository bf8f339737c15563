/**
 * Structured logging for every actor. pino because it is the fastest well-kept JSON logger for
 * Node and its child loggers carry context (client id, connection id) without string building.
 * Logs go to stderr so stdout stays free for data (`alphanet nc`) and the `listening on` line.
 *
 * The destination is Node's own `process.stderr`, not `pino.destination({ fd: 2 })`: sonic-boom
 * flushes synchronously on exit and retries every write error but EAGAIN forever (100 ms sleeps),
 * so once stderr's reader had gone (`… 2>&1 | head -2`) an EPIPE at exit kept the process alive
 * for good, second signals included. `process.stderr` never blocks the event loop (a full pipe
 * queues in the stream), drops what is queued when the process exits, and reports EPIPE as an
 * 'error' event, after which we stop logging instead of crashing.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Log bytes allowed to wait in stderr's queue (a reader that stalls, a full pipe). Lines beyond
 * it are dropped and counted, so a stalled log reader cannot grow the relay's heap.
 */
export const DEFAULT_LOG_QUEUE_BYTES = 8 * 1024 * 1024;

export interface LoggerOptions {
  /** @default process.env.ALPHANET_LOG_LEVEL ?? 'info' */
  level?: LevelWithSilent;
  /** Component name carried on every line. @default 'alphanet' */
  name?: string;
  /** Where lines go. @default process.stderr */
  stream?: NodeJS.WritableStream & { writableLength?: number };
  /** @default DEFAULT_LOG_QUEUE_BYTES (8 MiB) */
  maxQueuedBytes?: number;
}

/** What a logger's destination has dropped, for /metrics. */
export interface LogDropCounts {
  /** Lines dropped because the stream's queue was over `maxQueuedBytes`. */
  queueFull: number;
  /** Lines dropped because the stream had failed (EPIPE: its reader went away). */
  streamClosed: number;
}

const drops = new WeakMap<Logger, LogDropCounts>();
/** Streams seen failing; one 'error' listener per stream however many loggers share it. */
const failedStreams = new WeakMap<NodeJS.WritableStream, { failed: boolean }>();

/** Lines a logger made by {@link createLogger} has dropped (zeros for any other logger). */
export function logDrops(logger: Logger): Readonly<LogDropCounts> {
  return drops.get(logger) ?? { queueFull: 0, streamClosed: 0 };
}

/**
 * A pino destination over a Node writable that never blocks, never throws and never keeps the
 * process from exiting: it drops lines while the stream's queue is over `maxQueuedBytes`, and
 * everything once the stream has failed.
 */
function safeDestination(stream: NodeJS.WritableStream & { writableLength?: number }, maxQueuedBytes: number, counts: LogDropCounts): DestinationStream {
  let state = failedStreams.get(stream);
  if (!state) {
    const created = { failed: false };
    failedStreams.set(stream, (state = created));
    // EPIPE (reader gone) or EBADF: nobody can read these lines any more.
    stream.on('error', () => (created.failed = true));
  }
  const shared = state;
  return {
    write(line: string) {
      if (shared.failed) counts.streamClosed++;
      else if ((stream.writableLength ?? 0) > maxQueuedBytes) counts.queueFull++;
      else stream.write(line);
    },
  };
}

/** A logger writing JSON lines to stderr. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.ALPHANET_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const counts: LogDropCounts = { queueFull: 0, streamClosed: 0 };
  const destination = safeDestination(options.stream ?? process.stderr, options.maxQueuedBytes ?? DEFAULT_LOG_QUEUE_BYTES, counts);
  const logger = pino({ name: options.name ?? 'alphanet', level }, destination);
  drops.set(logger, counts);
  return logger;
}

/** A logger that drops everything, for specs and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
