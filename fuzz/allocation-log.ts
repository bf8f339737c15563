/**
 * Records the size of every `new Uint8Array(n)` made while a function runs, so a property can
 * assert what a decoder allocated for a frame, not only what it returned. Both decoders allocate
 * frame buffers with `new Uint8Array(length)` resolved through the global binding; swapping that
 * binding for a recording Proxy for the duration of one call sees exactly those allocations
 * (Buffer and subarray views go through their own constructors and are not counted).
 */
const RealUint8Array = globalThis.Uint8Array;
let log: number[] | undefined;

const RecordingUint8Array: Uint8ArrayConstructor = new Proxy(RealUint8Array, {
  construct(target, args, newTarget): object {
    if (log !== undefined && typeof args[0] === 'number') log.push(args[0]);
    return Reflect.construct(target, args, newTarget === RecordingUint8Array ? target : newTarget);
  },
});

/** Runs `fn` and returns its result with the byte sizes of the Uint8Arrays it allocated. */
export function withAllocationLog<T>(fn: () => T): { result: T; sizes: number[] } {
  const sizes: number[] = [];
  const outer = log;
  log = sizes;
  globalThis.Uint8Array = RecordingUint8Array;
  try {
    return { result: fn(), sizes };
  } finally {
    log = outer;
    if (outer === undefined) globalThis.Uint8Array = RealUint8Array;
  }
}
