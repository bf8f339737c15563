/**
 * Issue 9, finding 12 over real TCP: a relay whose pool is full refuses a new real IP with
 * Error(AddressSpaceExhausted) pointing to `alphanet store reclaim`; known clients keep their
 * addresses, and after a reclaim (relay stopped) the new real IP gets one.
 */
import t from 'tap';
import { startRelay } from '../../actors/relay/index.ts';
import { ErrorCode, PacketType } from '../../protocol/index.ts';
import { DAY_MS, openAddressStore } from '../../storage/index.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { tempDb } from './store-files.ts';

const SUBNET = '10.9.0.0/30'; // two usable addresses

t.test('a full pool answers AddressSpaceExhausted with the way out; reclaim makes room', async (t) => {
  const dbPath = await tempDb(t);
  let now = Date.now() - 100 * DAY_MS;
  const clock = () => now;
  let store = await openAddressStore({ path: dbPath, subnet: SUBNET, now: clock });
  let relay = await startRelay({ host: '127.0.0.1', port: 0, store });
  const a = await RawClient.open({ port: relay.port, localAddress: '127.0.0.2' });
  // The relay records last-seen when a client leaves too: 127.0.0.2 leaves 100 days ago.
  const left = new Promise((resolve) => relay.bus.once('client.disconnected', resolve));
  await a.client.close();
  await left;
  now = Date.now();
  const b = await RawClient.open({ port: relay.port, localAddress: '127.0.0.3' });
  const c = await RawClient.connect({ port: relay.port, localAddress: '127.0.0.4' });
  c.send({ type: PacketType.Hello, version: 1 });
  const refusal = await c.next(PacketType.Error);
  t.equal(refusal.code, ErrorCode.AddressSpaceExhausted);
  t.match(refusal.message, /every one of the 2 usable addresses of 10\.9\.0\.0\/30 is taken.*alphanet store reclaim --unseen-for 90d/);
  await c.closed;
  const again = await RawClient.open({ port: relay.port, localAddress: '127.0.0.3' });
  t.equal(again.virtualIp.ip, b.virtualIp.ip, 'a known client still gets its address');
  for (const client of [b.client, again.client]) client.socket.destroy();
  await relay.close();
  await store.close();

  // The operator, with the relay stopped: 127.0.0.2 was last seen 100 days ago.
  const operator = await openAddressStore({ path: dbPath, subnet: SUBNET });
  t.same((await operator.reclaim(90 * DAY_MS)).map((e) => e.realIp), ['127.0.0.2']);
  await operator.close();

  store = await openAddressStore({ path: dbPath, subnet: SUBNET });
  relay = await startRelay({ host: '127.0.0.1', port: 0, store });
  t.teardown(async () => {
    await relay.close();
    await store.close();
  });
  const d = await RawClient.open({ port: relay.port, localAddress: '127.0.0.4' });
  t.equal(d.virtualIp.ip, a.virtualIp.ip, 'the new real IP gets the reclaimed address');
  d.client.socket.destroy();
});
