/**
 * `alphanet identity show|rotate`: the identity key this machine proves at Hello and encrypts end
 * to end with (docs/SECURITY.md "Rotating keys"). `show` prints the key as peers pin it, so two
 * people can compare it out of band; `rotate` keeps the old key beside the new one, because a
 * key-mode relay ties an address to it and a peer's pin refuses the new one until forgotten.
 */
import { rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { defaultIdentityPath, loadIdentity, type Identity } from '../actors/client/identity.ts';
import { ClientError } from '../actors/client/errors.ts';
import { fail } from './client-options.ts';

interface IdentityFlags {
  identity?: string;
}

function fileOf(flags: IdentityFlags): string {
  return path.resolve(flags.identity ?? defaultIdentityPath());
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The name the old key moves to: `identity.old-2026-12-06T08-30-00Z` (colons are not portable). */
export function retiredName(file: string, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  return `${file}.old-${stamp}`;
}

function describe(identity: Identity): string {
  return `key ${identity.fingerprint}\nfile ${identity.path}\n`;
}

function withFileOption(command: Command): Command {
  return command.option('--identity <file>', 'the identity key file (default: identity in the config directory)');
}

export function buildIdentityCommand(): Command {
  const identity = new Command('identity').description('show or rotate the identity key this machine proves to relays and peers');
  identity.addCommand(
    withFileOption(new Command('show'))
      .description('print the public key (as peers pin it: compare it out of band) and its file')
      .action(async (flags: IdentityFlags) => {
        try {
          const file = fileOf(flags);
          // Showing must not create: a missing key is news, not something to paper over.
          if (!(await exists(file))) {
            throw new ClientError('ERR_IDENTITY', `no identity at ${file} yet: the first connection makes one, or run: alphanet identity rotate${flags.identity ? ` --identity ${flags.identity}` : ''}`);
          }
          process.stdout.write(describe(await loadIdentity(file)));
        } catch (error) {
          fail(error);
        }
      }),
  );
  identity.addCommand(
    withFileOption(new Command('rotate'))
      .description('make a new key; the old one is kept beside it as identity.old-<time>')
      .action(async (flags: IdentityFlags) => {
        try {
          const file = fileOf(flags);
          let retired: { file: string; old: Identity } | undefined;
          if (await exists(file)) {
            // Load first: a broken or world-readable key is refused before anything moves.
            const old = await loadIdentity(file);
            const to = retiredName(file);
            await rename(file, to);
            retired = { file: to, old };
          }
          const fresh = await loadIdentity(file);
          process.stdout.write(describe(fresh));
          if (retired) {
            process.stdout.write(`old key ${retired.old.fingerprint}\nold file ${retired.file}\n`);
            process.stderr.write(
              'Peers that pinned the old key refuse this one (ERR_E2E_PEER_KEY_CHANGED) until they run\n' +
                '  alphanet pins forget <this machine\'s virtual IP>\n' +
                'On a relay in --identity-mode key, the new key gets a new virtual IP; to keep the old one,\n' +
                `move the old file back: mv ${retired.file} ${file}\n`,
            );
          }
        } catch (error) {
          fail(error);
        }
      }),
  );
  return identity;
}
