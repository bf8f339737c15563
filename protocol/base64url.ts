/**
 * Unpadded base64url (RFC 4648 §5) without Node's Buffer, so code the browser bundle holds can
 * show a public key the way identity-proof.ts's formatPublicKey does.
 */
export function toBase64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
