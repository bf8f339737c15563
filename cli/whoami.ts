/** `alphanet whoami`: prints this machine's virtual IP. */
import { Command } from 'commander';
import { connect } from '../actors/client/index.ts';
import { addClientOptions, connectOptionsFrom, exitAfterStdout, fail } from './client-options.ts';
import type { ClientFlags } from './client-options.ts';

export function buildWhoamiCommand(): Command {
  return addClientOptions(new Command('whoami'))
    .description('print the virtual IP the relay gives this machine (by its real source address)')
    .action(async (flags: ClientFlags) => {
      try {
        const client = await connect(connectOptionsFrom(flags));
        process.stdout.write(`${client.virtualIp}\n`);
        await client.close();
        exitAfterStdout(0);
      } catch (error) {
        fail(error);
      }
    });
}
