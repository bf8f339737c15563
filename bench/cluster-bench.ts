/**
 * Cluster figures (issue 13, docs/CLUSTER.md): a nats-server with JetStream and three relay
 * processes started with --cluster, as users run them; new clients say Hello spread over the
 * three (the address map in JetStream KV: a create per new real IP, a block claim per 64), then
 * the same clients again (a cache hit, no write), in one run.
 *
 *   node --import tsx bench/cluster-bench.ts [new clients=5000] [at once=500]
 *
 * Target (issue 13): new-client assignment with the map in KV ≥ 2,000/s.
 */
import { connect } from '@nats-io/transport-node';
import { NatsAddressStore } from '../storage/index.ts';
import { startNatsServer } from '../specs/helpers/nats-server.ts';
import { AddressBlock, sourceAddress } from './lib/addresses.ts';
import { forEachLimited } from './lib/parallel.ts';
import { withDeadline } from './load/drive.ts';
import { RelayProcess } from './load/transports.ts';

const clients = Number(process.argv[2] ?? 5000);
const atOnce = Number(process.argv[3] ?? 500);
/** New clients per second with the map in KV (issue 13). */
const TARGET_PER_SECOND = 2000;
const DEADLINE_MS = 120_000;

async function hellos(relays: RelayProcess[]): Promise<number> {
  const seen = new Map<string, number>();
  const started = performance.now();
  await withDeadline(
    forEachLimited(clients, atOnce, async (i) => {
      const source = sourceAddress(AddressBlock.address, i);
      const client = await relays[i % relays.length].connect(source);
      seen.set(source, client.virtualIp);
      client.close();
    }),
    DEADLINE_MS,
    `${clients} clients saying Hello`,
  );
  const seconds = (performance.now() - started) / 1000;
  if (new Set(seen.values()).size !== clients) throw new Error(`${clients} clients got ${new Set(seen.values()).size} distinct virtual IPs`);
  return clients / seconds;
}

/** The map alone: three stores (three connections) in this process, `atOnce` calls in flight. */
async function storeAlone(url: string): Promise<number> {
  const connections = await Promise.all([1, 2, 3].map(() => connect({ servers: url })));
  try {
    const stores = await Promise.all(connections.map((connection, i) => NatsAddressStore.open({ connection, relayId: `s${i}`, bucket: 'bench-alone' })));
    const started = performance.now();
    await forEachLimited(clients, atOnce, (i) => stores[i % 3].findOrAllocate(`12.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`).then(() => {}));
    const perSecond = clients / ((performance.now() - started) / 1000);
    await Promise.all(stores.map((s) => s.close()));
    return perSecond;
  } finally {
    await Promise.all(connections.map((c) => c.close()));
  }
}

const nats = await startNatsServer();
const relays: RelayProcess[] = [];
try {
  for (const id of ['b1', 'b2', 'b3']) relays.push(await RelayProcess.start({ extraArgs: ['--cluster', nats.url, '--relay-id', id] }));
  const fresh = await hellos(relays);
  const known = await hellos(relays);
  // The same load on one relay with its lowdb store (fsynced, as shipped), in the same run: the
  // machine is shared, so only figures taken side by side compare.
  const single = await RelayProcess.start();
  let lowdb: number;
  try {
    lowdb = await hellos([single]);
  } finally {
    await single.stop();
  }
  const alone = await storeAlone(nats.url);
  const verdict = fresh >= TARGET_PER_SECOND ? 'yes' : 'NO';
  process.stdout.write(
    `cluster addresses  new clients/s over 3 relays, map in JetStream KV   ${Math.round(fresh).toLocaleString('en-US')}/s   ` +
      `${Math.round(known).toLocaleString('en-US')}/s returning   ${Math.round(lowdb).toLocaleString('en-US')}/s one relay on lowdb   ` +
      `target ≥ ${TARGET_PER_SECOND.toLocaleString('en-US')}/s   ${verdict}\n` +
      `cluster addresses  the KV map alone, 3 stores in one process             ${Math.round(alone).toLocaleString('en-US')}/s\n`,
  );
} finally {
  await Promise.allSettled(relays.map((r) => r.stop()));
  await nats.stop();
}
