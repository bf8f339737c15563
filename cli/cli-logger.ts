/**
 * The logger of the client commands. Their expected failures (the relay went away, a target
 * refused) are AlphanetErrors whose code and message say everything: logged with a stack trace
 * they filled a terminal with lines about our internals, so they are logged as `{ type, code,
 * message }`. Anything else (a bug) keeps its stack.
 */
import { pino } from 'pino';
import { createLogger, type Logger } from '../actors/logger.ts';
import { AlphanetError } from '../protocol/errors.ts';

/** pino's `err` serializer, without the stack for an AlphanetError. */
export function expectedErrorSerializer(error: unknown): unknown {
  if (error instanceof AlphanetError) return { type: error.name, code: error.code, message: error.message };
  return error instanceof Error ? pino.stdSerializers.err(error) : error;
}

/** A JSON-lines logger on stderr named `name`, at ALPHANET_LOG_LEVEL (else info). */
export function createCliLogger(name: string, options: { stream?: NodeJS.WritableStream } = {}): Logger {
  return createLogger({ name, ...(options.stream ? { stream: options.stream } : {}) }).child({}, { serializers: { err: expectedErrorSerializer } });
}
