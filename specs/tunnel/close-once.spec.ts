/** The close() every tunnel returns (tunnel/close-once.ts): one teardown however often it is called. */
import t from 'tap';
import { closeOnce } from '../../tunnel/close-once.ts';

t.test('the teardown runs once, every call gets the same promise, and closed settles after it', async (t) => {
  let runs = 0;
  let finish!: () => void;
  const closer = closeOnce(async () => {
    runs++;
    await new Promise<void>((resolve) => (finish = resolve));
  });
  let closedSettled = false;
  void closer.closed.then(() => (closedSettled = true));
  t.equal(runs, 0, 'nothing runs before close()');
  t.notOk(closer.isClosing);
  const first = closer.close();
  const second = closer.close();
  t.equal(first, second, 'the same promise');
  t.equal(runs, 1, 'one teardown');
  t.ok(closer.isClosing, 'closing while the teardown runs');
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.notOk(closedSettled, 'closed waits for the teardown');
  finish();
  await first;
  t.ok(closedSettled, 'closed has settled when close() resolves');
  await closer.close();
  t.equal(runs, 1, 'a call after the end runs nothing');
  t.ok(closer.isClosing);
});
