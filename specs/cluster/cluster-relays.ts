/**
 * Relay processes started with --cluster on loopback for the cluster specs: each on port 0 with
 * plaintext, killed at teardown, awaited until it listens.
 */
import { within } from '../helpers/wait.ts';
import { startMain, type RelayProcess } from '../cli/relay-process.ts';

/** Starting a relay under tsx on a loaded 2-core machine. */
export const START_MS = 30_000;

export interface Cleanup {
  teardown(fn: () => unknown): void;
}

export interface StartedRelay {
  run: RelayProcess;
  port: number;
}

/** One relay per id, on `urls[i]` (or `urls[0]` for all), with `extra` flags; started together. */
export function clusterRelays(t: Cleanup, ids: string[], urls: string[], extra: string[] = []): Promise<StartedRelay[]> {
  return Promise.all(
    ids.map(async (id, i) => {
      const run = startMain(['--port', '0', '--plaintext', '--cluster', urls[i] ?? urls[0], '--relay-id', id, ...extra]);
      t.teardown(() => void run.child.kill('SIGKILL'));
      const address = await within(`relay ${id} listening`, run.listening, START_MS);
      return { run, port: Number(address.split(':')[1]) };
    }),
  );
}
