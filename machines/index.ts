/**
 * The registry of every machine in this folder and the side that runs it. Static imports, not a
 * `readdir` and dynamic `import()`: the compiled package has no sources to list, a bundler or
 * tsc sees every machine, and which machines a relay runs is stated here once rather than
 * guessed from names. `npm run machines` exports this list (docs/machines/) and the relay's
 * dashboard draws the `relay` entries. `specs/cli/export-machines.spec.ts` fails when a
 * `*.machine.ts` file here exports a machine that is not registered.
 *
 * Adding a machine: import it and add one entry.
 */
import type { AnyStateMachine } from 'xstate';
import { clientMachine } from './client.machine.ts';
import { relayConnectionMachine } from './relay-connection.machine.ts';
import { socketPairMachine } from './socket-pair.machine.ts';
import { statusRequestMachine } from './status-request.machine.ts';
import { virtualSocketMachine } from './virtual-socket.machine.ts';

/** Which process runs a machine's actors: the relay, or a client (the toolkit, tunnels, CLI). */
export type MachineSide = 'relay' | 'client';

/** One registered machine. */
export interface MachineRegistration {
  /** The machine as exported from its file. */
  readonly machine: AnyStateMachine;
  /** Who runs it: the relay's dashboard draws only `relay` machines. */
  readonly side: MachineSide;
  /** Its file name in machines/, e.g. `socket-pair.machine.ts`. */
  readonly file: string;
}

/** Every machine of the project, one entry each. */
export const MACHINES: readonly MachineRegistration[] = [
  { machine: relayConnectionMachine, side: 'relay', file: 'relay-connection.machine.ts' },
  { machine: socketPairMachine, side: 'relay', file: 'socket-pair.machine.ts' },
  { machine: statusRequestMachine, side: 'relay', file: 'status-request.machine.ts' },
  { machine: clientMachine, side: 'client', file: 'client.machine.ts' },
  { machine: virtualSocketMachine, side: 'client', file: 'virtual-socket.machine.ts' },
];

/** The registered machines that `side` runs, in registry order. */
export function machinesOf(side: MachineSide, registry: readonly MachineRegistration[] = MACHINES): MachineRegistration[] {
  return registry.filter((entry) => entry.side === side);
}
