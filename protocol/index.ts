export * from './constants.ts';
export * from './address.ts';
export * from './errors.ts';
export type * from './packets.ts';
export * from './encode.ts';
export * from './fields.ts';
export * from './decode.ts';
export * from './frame-reader.ts';
export * from './decoder.ts';
export * from './body-sizes.ts';
// identity-proof.ts (node:crypto) is imported by path, not from here: the client's browser
// bundle holds this barrel and no Node built-in.
export * from './fingerprint.ts';
export * from './base64url.ts';
