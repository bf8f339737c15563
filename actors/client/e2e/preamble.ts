/**
 * The bytes an end-to-end encrypting end sends first on every virtual connection, before its Noise
 * handshake (docs/SECURITY.md "Opting out"; docs/PROTOCOL.md §8, E2eMismatch). They let each end
 * tell at once whether the other encrypts: an encrypting end that does not get them first is
 * talking to a plaintext end, and a plaintext end whose first data frame is them is talking to an
 * encrypting one. Both then close with E2eMismatch instead of taking a handshake for data, or
 * data for a handshake. They are a marker, not a security measure: the relay can strip or forge
 * them, which only fails the connection (it can cut it anyway); an encrypting end never accepts
 * a byte outside a sealed record either way.
 *
 * Pure (no Node built-ins): the plaintext check runs in the browser bundle too.
 */

/** "\0AlphaNET-e2e/1\n": 16 bytes no plaintext protocol starts with by accident. */
export const E2E_PREAMBLE: Uint8Array = new TextEncoder().encode('\0AlphaNET-e2e/1\n');

/** True when the pieces of a first data frame start with the whole preamble. */
export function startsWithPreamble(pieces: readonly Uint8Array[]): boolean {
  let matched = 0;
  for (const piece of pieces) {
    for (let i = 0; i < piece.length && matched < E2E_PREAMBLE.length; i++, matched++) {
      if (piece[i] !== E2E_PREAMBLE[matched]) return false;
    }
    if (matched === E2E_PREAMBLE.length) return true;
  }
  return false;
}

/** What an end that does not encrypt says when its peer does. */
export function plaintextEndMismatch(peer: string): string {
  return `${peer} encrypts end to end and this end does not (--no-e2e, e2e: false, or no identity); both ends need the same --no-e2e setting`;
}

/** What an encrypting end says when its peer does not. */
export function encryptingEndMismatch(peer: string): string {
  return `${peer} does not encrypt end to end (it runs with --no-e2e, e2e: false, or has no identity) and this end does; both ends need the same --no-e2e setting`;
}
