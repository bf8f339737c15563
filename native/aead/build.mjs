/**
 * Builds the native AES-GCM records (native/aead, see its README) at `npm ci` / `npm install`
 * time, with the node-gyp that npm ships and Node's own headers. A machine that cannot build it
 * (no compiler, say) still installs: the e2e layer then uses node:crypto, with the same records
 * on the wire, only slower. Set ALPHANET_AEAD_BUILD_REQUIRED=1 to make a failed build fail the
 * install instead (CI does, so the fast path is what its specs test).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const candidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((file) => file !== undefined && existsSync(file));
const required = process.env.ALPHANET_AEAD_BUILD_REQUIRED === '1';

function giveUp(why) {
  const message = `alphanet: the native AES-GCM records were not built (${why}); end-to-end encryption uses node:crypto instead, which costs about twice the CPU per byte`;
  if (required) {
    console.error(`${message}. ALPHANET_AEAD_BUILD_REQUIRED=1, so the install fails.`);
    process.exit(1);
  }
  console.warn(message);
  process.exit(0);
}

if (candidates.length === 0) giveUp('node-gyp was not found beside npm');
// Node's headers, OpenSSL's among them, from where npm is told they are (npm_config_nodedir),
// else from the installation beside this node: node-gyp would download them otherwise.
const nodedir = process.env.npm_config_nodedir ?? path.join(path.dirname(process.execPath), '..');
const args = [candidates[0], 'rebuild', `--directory=${here}`];
if (existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
const result = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  process.stderr.write(result.stderr ?? '');
  giveUp(`node-gyp exited with ${result.status ?? result.signal}`);
}
