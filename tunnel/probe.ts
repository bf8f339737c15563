/**
 * Does a TCP service answer? `alphanet expose` asks once at start, so a target that is down
 * or mistyped is said at once rather than as a refusal per connection later.
 */
import net from 'node:net';
import { TunnelError } from './errors.ts';
import { describeErrorAt } from '../actors/describe-error.ts';

/** Time the probe's TCP connect may take: a target on this network answers within it. */
export const DEFAULT_PROBE_CONNECT_TIMEOUT_MS = 2_000;
/** Time the target may take to close its side after ours, before the probe resets. */
export const PROBE_CLOSE_TIMEOUT_MS = 1_000;

/**
 * Connects to `target` and closes at once without a byte sent. Resolves with undefined when it
 * accepted, or with the ERR_TARGET_UNREACHABLE it would cause. Never rejects.
 *
 * A target that counts or queues its connections sees one empty connection: it is closed with a
 * FIN (not a reset) and the probe waits, briefly, for the target's FIN back, so when the probe
 * resolves the target has read the end of the empty connection (a server that closes on end has
 * closed it), and it cannot take the probe for the next real connection.
 */
export function probeTarget(target: { host: string; port: number }, timeoutMs = DEFAULT_PROBE_CONNECT_TIMEOUT_MS): Promise<TunnelError | undefined> {
  const where = `${target.host}:${target.port}`;
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(new TunnelError('ERR_TARGET_UNREACHABLE', `${where} did not accept a TCP connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      resolve(new TunnelError('ERR_TARGET_UNREACHABLE', `cannot connect to the target: ${describeErrorAt(error, where)}`, { cause: error }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      socket.resume();
      socket.end();
      // A target that keeps its side open after our FIN (allowHalfOpen) gets a reset instead.
      const closeTimer = setTimeout(() => socket.destroy(), PROBE_CLOSE_TIMEOUT_MS);
      socket.once('close', () => {
        clearTimeout(closeTimer);
        resolve(undefined);
      });
    });
  });
}
