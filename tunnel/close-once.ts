/**
 * The close() every tunnel hands back: its teardown runs once however often close() is called
 * (by the caller, the signal, the client stopping, the listener failing), every call gets the same
 * promise, and `closed` settles once the teardown has finished.
 */

/** A tunnel's close, made by {@link closeOnce}. */
export interface CloseOnce {
  /** Starts the teardown the first time; every call returns the same promise. */
  close(): Promise<void>;
  /** Settles once the teardown has finished. */
  readonly closed: Promise<void>;
  /** True once close() has been called, while the teardown runs and after. */
  readonly isClosing: boolean;
}

/** Wraps `teardown` as a tunnel's close(); nothing runs until close() is called. */
export function closeOnce(teardown: () => Promise<void>): CloseOnce {
  let closing: Promise<void> | undefined;
  let settleClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => (settleClosed = resolve));
  return {
    close: () => (closing ??= teardown().then(() => settleClosed())),
    closed,
    get isClosing() {
      return closing !== undefined;
    },
  };
}
