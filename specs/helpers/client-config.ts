/**
 * A spec that runs client commands (`alphanet whoami`, `nc`, `expose`, `forward`) over TLS gives
 * them a config directory of their own: the known-relays file they pin relays in must never be
 * the user's (`~/.config/alphanet`), and relays on reused ports with new keys must not meet old pins.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';

/** Sets ALPHANET_CONFIG_DIR (inherited by every child) to a fresh directory until `t` ends; returns it. */
export function isolateClientConfig(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'alphanet-config-'));
  const before = process.env.ALPHANET_CONFIG_DIR;
  process.env.ALPHANET_CONFIG_DIR = dir;
  t.teardown(() => {
    if (before === undefined) delete process.env.ALPHANET_CONFIG_DIR;
    else process.env.ALPHANET_CONFIG_DIR = before;
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
