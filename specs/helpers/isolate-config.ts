/**
 * Loaded into every tap test process (package.json `tap["node-arg"]`: `--import`), before the
 * spec: gives the process a config directory of its own, so the default identity file, the
 * end-to-end pins (known-peers) and the known-relays file never land in ~/.config/alphanet, and
 * parallel spec files never share them (a virtual IP pinned to one key by one spec and seen with
 * another key by the next would fail by ordering). Child processes a spec spawns inherit it.
 * An ALPHANET_CONFIG_DIR set already (by whoever runs tap) is kept.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

if (!process.env.ALPHANET_CONFIG_DIR) {
  const dir = mkdtempSync(path.join(tmpdir(), 'alphanet-spec-config-'));
  process.env.ALPHANET_CONFIG_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}
