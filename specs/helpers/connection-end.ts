/** How a virtual connection ended, for specs that make it fail (tampering, resets). */
import type { VirtualConnection } from '../../actors/client/index.ts';
import { within, WAIT_FOR_MS } from './wait.ts';

/** Reads until the connection fails or ends; what arrived, and the error (undefined for a clean end). */
export async function readUntilFailure(conn: VirtualConnection): Promise<{ bytes: Buffer; error: unknown }> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of conn) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks), error: undefined };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

/** The connection's error once it has closed (undefined for a clean close); fails after `timeoutMs`. */
export function closedWith(conn: VirtualConnection, timeoutMs = WAIT_FOR_MS): Promise<unknown> {
  return within(
    'the connection to close',
    new Promise((resolve) => {
      if (conn.closed) resolve(conn.error);
      else conn.once('close', resolve);
    }),
    timeoutMs,
  );
}
