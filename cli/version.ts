/** The package's own version, for `--version`, read from its package.json at run time. */
import { readFileSync } from 'node:fs';

/**
 * The version in the nearest package.json named `alphanet` above this module: one level up in a
 * checkout (cli/), two in the npm package (dist/cli/). Reading it beats a copy in the code,
 * which `npm version` would not update.
 */
export function packageVersion(from: URL = new URL('.', import.meta.url)): string {
  for (let dir = from; ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'alphanet' && typeof pkg.version === 'string') return pkg.version;
    } catch (error) {
      // No package.json at this level: keep looking. A broken one is a real fault.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (new URL('..', dir).href === dir.href) throw new Error('alphanet: package.json not found above the program');
  }
}
