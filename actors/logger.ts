/**
 * Structured logging for every actor. pino because it is the fastest well-kept JSON logger for
 * Node and its child loggers carry context (client id, connection id) without string building.
 * Logs go to stderr so stdout stays free for data (`alphanet nc`) and the `listening on` line.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** @default process.env.ALPHANET_LOG_LEVEL ?? 'info' */
  level?: LevelWithSilent;
  /** Component name carried on every line. @default 'alphanet' */
  name?: string;
}

/** A logger writing JSON lines to stderr. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.ALPHANET_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  return pino({ name: options.name ?? 'alphanet', level }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that drops everything, for specs and embedding. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
