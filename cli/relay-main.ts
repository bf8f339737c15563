/** `npm start`: the relay command as a program (`node --import tsx cli/relay-main.ts --port 0`). */
import { ensureNodeFlags, RELAY_NODE_FLAGS } from './node-flags.ts';
import { buildRelayCommand } from './relay-command.ts';
import { packageVersion } from './version.ts';

// `npm start` passes the flags itself; `node --import tsx cli/relay-main.ts` gets them here.
await ensureNodeFlags(RELAY_NODE_FLAGS);
await buildRelayCommand()
  .name('alphanet-relay')
  .version(packageVersion(), '-V, --version', 'print the version of alphanet')
  .parseAsync(process.argv);
