/**
 * fast-check glue of the stateful relay fuzz: commands for `fc.commands`, a pool that keeps one
 * harness (one relay) for all the cases of a run, and the property itself.
 */
import fc from 'fast-check';
import { toJsonValue } from './bytes.ts';
import { anyCommandData, type CommandData } from './relay-command-data.ts';
import { resetCase, runCommand } from './relay-commands.ts';
import { RelayHarness } from './relay-harness.ts';
import type { RelayModel } from './relay-model.ts';

/** One command for fc.commands: runs its data against the harness, which owns the model. */
export class RelayCommand implements fc.AsyncCommand<RelayModel, RelayHarness> {
  constructor(readonly data: CommandData) {}
  check(): boolean {
    return true;
  }
  async run(_model: RelayModel, h: RelayHarness): Promise<void> {
    try {
      await runCommand(h, this.data);
    } catch (error) {
      h.broken = true;
      throw error;
    }
  }
  toString(): string {
    return JSON.stringify(toJsonValue(this.data));
  }
}

export const relayCommands = fc.commands([anyCommandData.map((d) => new RelayCommand(d), (c) => (c as RelayCommand).data)], {
  maxCommands: 24,
  size: 'large',
});

/** A harness shared by every case of a run, replaced when a case left it broken. */
export class HarnessPool {
  #harness: RelayHarness | undefined;
  /** Packets checked against the model, by type, over every harness of the pool. */
  readonly seen = new Map<string, number>();
  /** Relay bus events counted over every harness of the pool. */
  readonly events = new Map<string, number>();

  async fresh(): Promise<RelayHarness> {
    if (this.#harness !== undefined && this.#harness.broken) {
      const old = this.#harness;
      this.#harness = undefined;
      await old.close();
    }
    this.#harness ??= await RelayHarness.start(this.seen, this.events);
    try {
      await resetCase(this.#harness);
    } catch (error) {
      this.#harness.broken = true;
      throw error;
    }
    return this.#harness;
  }

  async close(): Promise<void> {
    await this.#harness?.close();
    this.#harness = undefined;
  }
}

/** Runs one command sequence as one case. */
export async function runSequence(pool: HarnessPool, commands: Iterable<fc.AsyncCommand<RelayModel, RelayHarness>>): Promise<void> {
  await fc.asyncModelRun(async () => {
    const h = await pool.fresh();
    return { model: h.model, real: h };
  }, commands);
}

/** The model property: any command sequence, checked command by command. */
export function relayModelProperty(pool: HarnessPool): fc.IAsyncPropertyWithHooks<[Iterable<fc.AsyncCommand<RelayModel, RelayHarness>>]> {
  return fc.asyncProperty(relayCommands, (commands) => runSequence(pool, commands));
}


