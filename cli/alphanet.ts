/**
 * The `alphanet` command. Each subcommand lives in its own module and exports a builder;
 * adding one is one line in COMMANDS.
 */
import { Command } from 'commander';
import { buildExposeCommand } from './expose.ts';
import { buildForwardCommand } from './forward.ts';
import { buildNcCommand } from './nc.ts';
import { buildRelayCommand } from './relay-options.ts';
import { buildStoreCommand } from './store.ts';
import { buildWhoamiCommand } from './whoami.ts';

/** Builders of the subcommands, in help order. */
const COMMANDS: Array<() => Command> = [
  buildRelayCommand,
  buildWhoamiCommand,
  buildNcCommand,
  buildExposeCommand,
  buildForwardCommand,
  buildStoreCommand,
];

/** The whole program. */
async function buildProgram(): Promise<Command> {
  const program = new Command('alphanet')
    .description('AlphaNET: permanent virtual IPs and virtual sockets through a relay')
    .showHelpAfterError();
  for (const build of COMMANDS) {
    program.addCommand(build());
  }
  return program;
}

const program = await buildProgram();
await program.parseAsync(process.argv);
