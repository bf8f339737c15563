import { AlphanetError } from '../protocol/errors.ts';

/** Stable codes of {@link StoreError}; each is listed in docs/STORAGE.md. */
export type StoreErrorCode =
  /** A manifest or shard file is not valid JSON or not a valid store file. Never overwritten. */
  | 'ERR_STORE_CORRUPT'
  /** Writing, fsyncing or renaming a store file failed; the allocation is not durable. */
  | 'ERR_STORE_WRITE'
  /** Reading a store file failed for a reason other than its content (permissions, I/O). */
  | 'ERR_STORE_READ'
  /** Every usable address of the subnet is taken. */
  | 'ERR_ADDRESS_SPACE_EXHAUSTED'
  /** The store was closed. */
  | 'ERR_STORE_CLOSED'
  /** The subnet is not an IPv4 CIDR with at least two usable addresses. */
  | 'ERR_INVALID_SUBNET'
  /** The store on disk was created with another subnet than the one requested. */
  | 'ERR_SUBNET_MISMATCH'
  /** The real IP is not an IPv4 or IPv6 address. */
  | 'ERR_INVALID_REAL_IP'
  /** Another process (a relay, or `alphanet store reclaim`) holds the store's lock. */
  | 'ERR_STORE_LOCKED'
  /** A file the manifest or journal says must exist is missing, empty or shorter than recorded. */
  | 'ERR_STORE_MISSING'
  /** The store was opened to read (`access: 'read'`) and a write was asked of it. */
  | 'ERR_STORE_READ_ONLY'
  /** The store was made in the other identity mode (docs/STORAGE.md "Identity mode"). */
  | 'ERR_IDENTITY_MODE_MISMATCH';

/** A failure of the address store. */
export class StoreError extends AlphanetError {
  declare readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
