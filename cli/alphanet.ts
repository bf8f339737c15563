/**
 * The `alphanet` command. Each subcommand lives in its own module and exports a builder;
 * adding one is one line in COMMANDS.
 */
import { Command } from 'commander';
import { buildExposeCommand } from './expose.ts';
import { buildForwardCommand } from './forward.ts';
import { buildIdentityCommand } from './identity.ts';
import { buildNcCommand } from './nc.ts';
import { buildPinsCommand } from './pins.ts';
import { buildProxyCommand } from './proxy.ts';
import { ensureNodeFlags, RELAY_NODE_FLAGS } from './node-flags.ts';
import { buildRelayCommand } from './relay-command.ts';
import { buildStoreCommand } from './store.ts';
import { packageVersion } from './version.ts';
import { buildWhoamiCommand } from './whoami.ts';

/** Builders of the subcommands, in help order. */
const COMMANDS: Array<() => Command> = [
  buildRelayCommand,
  buildWhoamiCommand,
  buildNcCommand,
  buildExposeCommand,
  buildForwardCommand,
  buildProxyCommand,
  buildStoreCommand,
  buildPinsCommand,
  buildIdentityCommand,
];

/** The whole program. */
async function buildProgram(): Promise<Command> {
  const program = new Command('alphanet')
    .description('AlphaNET: permanent virtual IPs and virtual sockets through a relay')
    .version(packageVersion(), '-V, --version', 'print the version of alphanet')
    .showHelpAfterError();
  for (const build of COMMANDS) {
    program.addCommand(build());
  }
  return program;
}

// The relay needs its heap flags however it was started (cli/node-flags.ts); the others do not.
if (process.argv[2] === 'relay') await ensureNodeFlags(RELAY_NODE_FLAGS);
const program = await buildProgram();
await program.parseAsync(process.argv);
