/**
 * A long-lived command (expose, forward) started while its relay is down waits for it, as it
 * rides out the relay going down later: dials again with the client's reconnection backoff and
 * says so once, not once per attempt.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, DEFAULT_RECONNECT_POLICY } from '../actors/client/index.ts';
import type { Client, ConnectOptions, ReconnectPolicy } from '../actors/client/index.ts';
import { describeError } from '../actors/describe-error.ts';
import type { Logger } from '../actors/logger.ts';
import { AlphanetError } from '../protocol/errors.ts';
import { formatRelay } from './client-options.ts';

/** Failures that a relay coming up (or having room again) cures; anything else is final. */
const WORTH_WAITING_FOR = new Set(['ERR_RELAY_UNREACHABLE', 'ERR_RELAY_REJECTED', 'ERR_RELAY_LOST']);

/**
 * connect(), dialled again after `policy`'s backoff while the relay cannot be reached. Logs one
 * warning with the reason when the first dial fails; the client's own `connected to relay` line
 * says when it answered. Rejects at once on other errors, and with the signal's reason on abort.
 */
export async function connectWhenUp(
  options: ConnectOptions & { signal: AbortSignal },
  logger: Logger,
  policy: ReconnectPolicy = DEFAULT_RECONNECT_POLICY,
): Promise<Client> {
  let warned = false;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect(options);
    } catch (error) {
      options.signal.throwIfAborted();
      if (!(error instanceof AlphanetError) || !WORTH_WAITING_FOR.has(error.code) || attempt + 1 >= policy.maxAttempts) throw error;
      if (!warned) {
        warned = true;
        logger.warn({ relay: options.url ?? formatRelay({ host: options.host ?? '', port: options.port ?? 0 }), reason: describeError(error) }, 'cannot reach the relay; dialling again with backoff until it answers');
      }
      await sleep(Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** attempt), undefined, { signal: options.signal });
    }
  }
}
