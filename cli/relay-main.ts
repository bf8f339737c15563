/** `npm start`: the relay command as a program (`node --import tsx cli/relay-main.ts --port 0`). */
import { buildRelayCommand } from './relay-options.ts';

await buildRelayCommand().name('alphanet-relay').parseAsync(process.argv);
