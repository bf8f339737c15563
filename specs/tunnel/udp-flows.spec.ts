/** The UDP tunnels' flow table (tunnel/udp-flows.ts): bounded by count (the flow idle longest goes) and by idle time. */
import t from 'tap';
import { UdpFlowTable, type UdpFlow } from '../../tunnel/udp-flows.ts';

function flow(key: string, lastActive: number, closed: string[]): UdpFlow {
  return { key, lastActive, close: () => void closed.push(key) };
}

t.test('a flow beyond maxFlows closes the one idle longest', async (t) => {
  const closed: string[] = [];
  const table = new UdpFlowTable<UdpFlow>(60_000, 2);
  t.teardown(() => table.closeAll());
  const now = Date.now();
  table.add(flow('a', now - 10, closed));
  table.add(flow('b', now - 20, closed));
  table.add(flow('c', now, closed));
  t.same(closed, ['b']);
  t.equal(table.get('b'), undefined);
  t.ok(table.get('a') && table.get('c'));
  t.match(table.counts, { flows: 2, totalFlows: 3, expiredFlows: 1 });
});

t.test('an idle flow is closed by the sweep; an active one stays', async (t) => {
  const closed: string[] = [];
  const idleMs = 100;
  const table = new UdpFlowTable<UdpFlow>(idleMs, 10);
  t.teardown(() => table.closeAll());
  const idle = flow('idle', Date.now(), closed);
  const busy = flow('busy', Date.now(), closed);
  table.add(idle);
  table.add(busy);
  const keepBusy = setInterval(() => (busy.lastActive = Date.now()), 10);
  t.teardown(() => clearInterval(keepBusy));
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('the idle flow was not closed within 5 s')), 5_000);
    idle.close = () => {
      closed.push('idle');
      clearTimeout(deadline);
      resolve();
    };
  });
  t.same(closed, ['idle']);
  t.ok(table.get('busy'), 'the active flow stays');
  table.closeAll();
  t.same(closed, ['idle', 'busy'], 'closeAll closes the rest');
  t.equal(table.counts.flows, 0);
});
