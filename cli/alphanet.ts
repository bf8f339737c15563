/**
 * The `alphanet` command. Each subcommand lives in its own module and exports a builder;
 * adding one is one line in COMMANDS.
 */
import { Command } from 'commander';
import { buildNcCommand } from './nc.ts';
import { buildWhoamiCommand } from './whoami.ts';

/** Builders of the subcommands, in help order. */
const COMMANDS: Array<() => Command | Promise<Command | undefined>> = [
  relayCommand,
  buildWhoamiCommand,
  buildNcCommand,
];

/**
 * The relay's command is owned by cli/relay-options.ts; loaded by path so this CLI still runs
 * in a checkout where it has not landed.
 */
async function relayCommand(): Promise<Command | undefined> {
  const path = './relay-options.ts';
  try {
    const module = (await import(path)) as { buildRelayCommand?: () => Command };
    return module.buildRelayCommand?.();
  } catch {
    return undefined;
  }
}

/** The whole program. */
async function buildProgram(): Promise<Command> {
  const program = new Command('alphanet')
    .description('AlphaNET: permanent virtual IPs and virtual sockets through a relay')
    .showHelpAfterError();
  for (const build of COMMANDS) {
    const command = await build();
    if (command) program.addCommand(command);
  }
  return program;
}

const program = await buildProgram();
await program.parseAsync(process.argv);
