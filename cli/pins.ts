/**
 * `alphanet pins list` / `alphanet pins forget VIRTUAL_IP`: the identity keys this machine pinned
 * per virtual IP on first use (docs/SECURITY.md "Pins"). A peer whose key changed is refused until
 * its pin is forgotten here.
 */
import net from 'node:net';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { configDirectory } from '../actors/client/identity.ts';
import { KNOWN_PEERS_FILE_NAME, KnownPeers } from '../actors/client/e2e/known-peers.ts';
import { fail } from './client-options.ts';

interface PinsFlags {
  identity?: string;
  knownPeers?: string;
}

/** The pins file the flags name: --known-peers, else beside --identity, else in the config directory. */
export function pinsFileOf(flags: PinsFlags): string {
  if (flags.knownPeers) return path.resolve(flags.knownPeers);
  const directory = flags.identity ? path.dirname(path.resolve(flags.identity)) : configDirectory();
  return path.join(directory, KNOWN_PEERS_FILE_NAME);
}

function withFileOptions(command: Command): Command {
  return command
    .option('--identity <file>', 'the identity whose pins these are (its known-peers file sits beside it)')
    .option('--known-peers <file>', 'the pins file itself');
}

function virtualIpArgument(text: string): string {
  if (!net.isIPv4(text)) throw new InvalidArgumentError(`"${text}" is not a virtual IPv4 address`);
  return text;
}

export function buildPinsCommand(): Command {
  const pins = new Command('pins').description("list or forget the peers' identity keys pinned on first use (end-to-end encryption)");
  pins.addCommand(
    withFileOptions(new Command('list'))
      .description('print each pinned virtual IP and its key')
      .action(async (flags: PinsFlags) => {
        try {
          const file = pinsFileOf(flags);
          const all = await new KnownPeers(file).list();
          for (const [ip, key] of all) process.stdout.write(`${ip} ${key}\n`);
          if (all.size === 0) process.stderr.write(`no pins in ${file}\n`);
        } catch (error) {
          fail(error);
        }
      }),
  );
  pins.addCommand(
    withFileOptions(new Command('forget'))
      .description("forget a virtual IP's pinned key, so its next key is trusted on first use")
      .argument('<virtual-ip>', 'the peer whose pin goes', virtualIpArgument)
      .action(async (virtualIp: string, flags: PinsFlags) => {
        try {
          const file = pinsFileOf(flags);
          if (await new KnownPeers(file).forget(virtualIp)) {
            process.stdout.write(`forgot the pin of ${virtualIp}\n`);
            return;
          }
          process.stderr.write(`alphanet pins: no pin for ${virtualIp} in ${file}\n`);
          process.exitCode = 1;
        } catch (error) {
          fail(error);
        }
      }),
  );
  return pins;
}
