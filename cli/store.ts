/**
 * `alphanet store`: look at and maintain the relay's address store (docs/STORAGE.md).
 *
 *   alphanet store list    [--db PATH] [--json]
 *   alphanet store stats   [--db PATH]
 *   alphanet store reclaim --unseen-for 90d [--db PATH] [--dry-run]
 *
 * `list` and `stats` open the store to read (no lock, so they work beside a running relay);
 * `stats` says who holds the lock, if anyone.
 * `reclaim` takes the store's lock, so it refuses while a relay has the store open: no client can
 * be connected with an address it gives back. With `--cluster` it refuses: a cluster's address map
 * is never reclaimed (CLUSTER_RECLAIM_REFUSAL says why; docs/CLUSTER.md "Full").
 */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { formatIpv4 } from '../protocol/address.ts';
import { AlphanetError } from '../protocol/errors.ts';
import { DAY_MS, DEFAULT_DB_PATH, dayOf, formatDay, openAddressStore, probeStoreLock, type SeenEntry, type ShardedAddressStore } from '../storage/index.ts';

const DURATION = /^(\d+)(h|d|w)$/;
const UNIT_MS = { h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS } as const;

/** "90d" → ms. Hours, days or weeks, a positive whole number. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  if (m === null || Number(m[1]) === 0) throw new InvalidArgumentError('expected a duration like 90d, 12w or 36h');
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/**
 * Why a cluster's addresses are not reclaimed. The map lives in JetStream KV and is safe on
 * Debian's nats-server 2.9.10 only because no key is ever written twice: there (nats-server
 * #4320, fixed in 2.9.21) a create after a delete can have several winners, so giving an address
 * back (deleting its key for another real IP to create) could hand it to two real IPs at once.
 * And the map keeps no last-seen day to tell which addresses are unused.
 */
export const CLUSTER_RECLAIM_REFUSAL =
  "a cluster's address map (JetStream KV, --cluster) is never reclaimed: its safety on nats-server before 2.9.21 (issue #4320) rests on never writing a key twice, " +
  'and reclaiming means deleting an assignment for another real IP to take, which that server can give to two at once; the map also records no last-seen day. ' +
  'Plan the --subnet for every real IP the cluster will see (docs/CLUSTER.md "Full")';

function dbOption(): Option {
  return new Option('--db <file>', 'address store file (the relay\'s --db)').env('ALPHANET_DB').default(DEFAULT_DB_PATH);
}

/** One line per entry: virtual IP, real IP, day last seen. */
function formatEntry(e: SeenEntry): string {
  return `${formatIpv4(e.virtualIp)}\t${e.realIp}\t${formatDay(e.lastSeenDay)}`;
}

function byVirtualIp(a: SeenEntry, b: SeenEntry): number {
  return a.virtualIp - b.virtualIp;
}

/** Runs `body` on the store, closing it after; any failure is printed with its code and exits 1. */
async function withStore(db: string, access: 'read' | 'write', body: (store: ShardedAddressStore) => Promise<void> | void): Promise<void> {
  let store: ShardedAddressStore | undefined;
  try {
    store = await openAddressStore({ path: db, access, create: false });
    await body(store);
    await store.close();
  } catch (error) {
    await store?.close().catch(() => undefined);
    const message = error instanceof AlphanetError ? `${error.message} (${error.code})` : error instanceof Error ? error.message : String(error);
    process.stderr.write(`alphanet store: ${message}\n`);
    process.exitCode = 1;
  }
}

export function buildStoreCommand(): Command {
  const command = new Command('store').description("inspect the relay's address store and reclaim addresses unseen for a long time");

  command
    .command('list')
    .description('print every entry: virtual IP, real IP, day last seen (UTC)')
    .addOption(dbOption())
    .option('--json', 'one JSON array of {virtualIp, realIp, lastSeen}')
    .action(async (flags: { db: string; json?: boolean }) => {
      await withStore(flags.db, 'read', (store) => {
        const entries = [...store.seenEntries()].sort(byVirtualIp);
        if (flags.json) {
          const rows = entries.map((e) => ({ virtualIp: formatIpv4(e.virtualIp), realIp: e.realIp, lastSeen: formatDay(e.lastSeenDay) }));
          process.stdout.write(`${JSON.stringify(rows)}\n`);
        } else {
          for (const e of entries) process.stdout.write(`${formatEntry(e)}\n`);
        }
      });
    });

  command
    .command('stats')
    .description('subnet, entries, free addresses, how many entries are unseen for 30/90/365 days, and who has the store open')
    .addOption(dbOption())
    .action(async (flags: { db: string }) => {
      await withStore(flags.db, 'read', async (store) => {
        const holder = await probeStoreLock(path.resolve(flags.db));
        const today = dayOf(Date.now());
        const ages = [30, 90, 365].map((days) => [days, 0] as [number, number]);
        for (const e of store.seenEntries()) for (const age of ages) if (today - e.lastSeenDay > age[0]) age[1]++;
        process.stdout.write(
          [
            `subnet   ${store.subnet.cidr} (${store.subnet.usable} usable addresses)`,
            `entries  ${store.size}`,
            `free     ${store.free}`,
            `unseen   ${ages.map(([days, n]) => `${n} for over ${days}d`).join(', ')}`,
            `in use   ${holder === undefined ? 'no (reclaim can run)' : `by ${holder}`}`,
          ].join('\n') + '\n',
        );
      });
    });

  command
    .command('reclaim')
    .description('give back the addresses of real IPs unseen for a given time (refused while a relay has the store open)')
    .requiredOption('--unseen-for <duration>', 'reclaim entries last seen longer ago than this, e.g. 90d, 12w, 36h', parseDuration)
    .addOption(dbOption())
    .option('--dry-run', 'only print what would be reclaimed; writes nothing and takes no lock')
    .option('--cluster <url>', "refused: a cluster's address map is never reclaimed (docs/CLUSTER.md)")
    .action(async (flags: { db: string; unseenFor: number; dryRun?: boolean; cluster?: string }) => {
      if (flags.cluster !== undefined) {
        process.stderr.write(`alphanet store: ${CLUSTER_RECLAIM_REFUSAL} (ERR_CLUSTER_RECLAIM)\n`);
        process.exitCode = 1;
        return;
      }
      await withStore(flags.db, flags.dryRun ? 'read' : 'write', async (store) => {
        const reclaimed = (await store.reclaim(flags.unseenFor, flags.dryRun)).sort(byVirtualIp);
        const verb = flags.dryRun ? 'would reclaim' : 'reclaimed';
        for (const e of reclaimed) process.stdout.write(`${verb} ${formatIpv4(e.virtualIp)} from ${e.realIp} (last seen ${formatDay(e.lastSeenDay)})\n`);
        const days = Math.round(flags.unseenFor / DAY_MS);
        process.stdout.write(
          `${verb} ${reclaimed.length} address${reclaimed.length === 1 ? '' : 'es'} unseen for ${days >= 1 ? `${days}d` : `${flags.unseenFor / 3_600_000}h`}; ` +
            `${store.size} entries${flags.dryRun ? '' : ' remain'}, ${store.free} addresses free\n`,
        );
      });
    });

  return command;
}
