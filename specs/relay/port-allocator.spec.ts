/**
 * The ephemeral-port allocator (actors/relay/port-allocator.ts): every port once, next-fit, and
 * the same answers as a plain scan over a Set for any sequence of binds and releases.
 */
import t from 'tap';
import fc from 'fast-check';
import { EPHEMERAL_FIRST_PORT, EPHEMERAL_PORT_COUNT, PortAllocator } from '../../actors/relay/port-allocator.ts';

/** The scan the allocator replaced (issue 9, finding 4), as the model. */
class ScanModel {
  used = new Set<number>();
  cursor = 0;
  allocate(): number | undefined {
    for (let i = 0; i < EPHEMERAL_PORT_COUNT; i++) {
      const index = (this.cursor + i) % EPHEMERAL_PORT_COUNT;
      if (!this.used.has(index)) {
        this.used.add(index);
        this.cursor = (index + 1) % EPHEMERAL_PORT_COUNT;
        return EPHEMERAL_FIRST_PORT + index;
      }
    }
    return undefined;
  }
}

t.test('hands out all 16,384 ports once each, then none; a released port comes back', async (t) => {
  const ports = new PortAllocator();
  const seen = new Set<number>();
  for (let i = 0; i < EPHEMERAL_PORT_COUNT; i++) seen.add(ports.allocate()!);
  t.equal(seen.size, EPHEMERAL_PORT_COUNT);
  t.equal(Math.min(...seen), 49152);
  t.equal(Math.max(...seen), 65535);
  t.equal(ports.allocate(), undefined, 'full');
  ports.release(50_000);
  t.equal(ports.allocate(), 50_000);
  t.equal(ports.allocate(), undefined);
  ports.release(80);
  t.equal(ports.size, EPHEMERAL_PORT_COUNT, 'ports outside the range are not counted');
});

t.test('next-fit: a port just released is not the next one handed out', async (t) => {
  const ports = new PortAllocator();
  const first = ports.allocate()!;
  ports.release(first);
  t.equal(ports.allocate(), first + 1);
});

t.test('any sequence of allocations, releases and explicit binds matches the scan', async () => {
  const op = fc.oneof(
    fc.constant({ kind: 'allocate' as const, n: 1 }),
    fc.record({ kind: fc.constant('allocateMany' as const), n: fc.integer({ min: 1, max: 5000 }) }),
    fc.record({ kind: fc.constant('release' as const), n: fc.integer({ min: 0, max: EPHEMERAL_PORT_COUNT - 1 }) }),
    fc.record({ kind: fc.constant('take' as const), n: fc.integer({ min: 0, max: EPHEMERAL_PORT_COUNT - 1 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const ports = new PortAllocator();
      const model = new ScanModel();
      for (const o of ops) {
        if (o.kind === 'release') {
          ports.release(EPHEMERAL_FIRST_PORT + o.n);
          model.used.delete(o.n);
        } else if (o.kind === 'take') {
          ports.take(EPHEMERAL_FIRST_PORT + o.n);
          model.used.add(o.n);
        } else {
          for (let i = 0; i < o.n; i++) {
            const got = ports.allocate();
            const want = model.allocate();
            if (got !== want) throw new Error(`allocate gave ${got}, the scan ${want}`);
          }
        }
        if (ports.size !== model.used.size) throw new Error(`size ${ports.size}, the scan ${model.used.size}`);
      }
    }),
    { numRuns: 200 },
  );
});
