export * from './constants.ts';
export * from './address.ts';
export * from './errors.ts';
export type * from './packets.ts';
export * from './encode.ts';
export * from './decode.ts';
export * from './decoder.ts';
export * from './body-sizes.ts';
