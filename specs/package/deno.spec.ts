/**
 * Deno as a second runtime: the same sources, run by `deno run`, start the relay (from the CLI)
 * and two clients that move bytes through a virtual connection (scripts/deno-smoke.ts). Deno
 * comes from the `deno` devDependency (the npm package ships the binary), so `npm ci` brings it;
 * the spec skips only when no Deno binary can be found at all, and says so.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { formatIpv4 } from '../../protocol/address.ts';
import { openAddressStore } from '../../storage/index.ts';
import { childEnv, run, start } from '../helpers/child-process.ts';
import { findDeno } from '../helpers/deno.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const deno = findDeno();
const env = childEnv({ NO_COLOR: '1', ALPHANET_RELAY: '', ALPHANET_LOG_LEVEL: 'warn' });
/** Least privilege, as docs/CLIENT.md shows it: loopback only, the sources and node_modules. */
const CLIENT_PERMISSIONS = ['--allow-net=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4', '--allow-read', '--allow-env', '--allow-sys'];

t.test('under Deno: the relay from the CLI, two clients, a virtual connection, bytes intact both ways, the store kept', { skip: deno.path ? false : `Deno unavailable: ${deno.why}` }, async (t) => {
  const bin = deno.path as string;
  const version = await run(bin, ['--version'], 30_000, { env });
  t.match(version.stdout, /^deno \d+\.\d+/, `deno from the ${deno.why}`);

  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-deno-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = path.join(dir, 'db.json');
  const relay = start(
    bin,
    // TLS on --port (the default, its key made beside the db), and plain TCP beside it for the smoke script's API clients.
    ['run', '--allow-net=127.0.0.1', '--allow-read', '--allow-env', '--allow-sys', `--allow-write=${dir}`, 'cli/alphanet.ts', 'relay', '--port', '0', '--plaintext-port', '0', '--db', db],
    { cwd: ROOT, env },
  );
  t.teardown(() => void relay.child.kill('SIGKILL'));
  const [line, address, , plain] = await relay.waitFor(/listening on (127\.0\.0\.1:\d+) \(TLS, fingerprint (sha256:[0-9A-F:]{95}); plaintext on (127\.0\.0\.1:\d+)\)\n/, 60_000);

  const smoke = await run(bin, ['run', ...CLIENT_PERMISSIONS, 'scripts/deno-smoke.ts', '--relay', plain as string, '--bytes', String(3 * 1024 * 1024)], 60_000, { cwd: ROOT, env });
  t.equal(smoke.code, 0, smoke.stderr);
  const result = JSON.parse(smoke.stdout) as { runtime: string; server: string; client: string; bytesEachWay: number };
  t.equal(result.runtime, 'deno');
  t.equal(result.bytesEachWay, 3 * 1024 * 1024, 'the script checked 3 MiB each way (SHA-256)');
  t.match(result.server, /^100\.64\.\d+\.\d+$/, 'the relay’s default subnet');
  t.not(result.server, result.client);

  // Over TLS, as the CLI client connects by default: it pins the relay in a config dir it may write.
  const config = path.join(dir, 'config');
  const whoami = await run(bin, ['run', ...CLIENT_PERMISSIONS, `--allow-write=${config}`, 'cli/alphanet.ts', 'whoami', '--relay', address as string, '--local-address', '127.0.0.2'], 60_000, {
    cwd: ROOT,
    env: { ...env, ALPHANET_CONFIG_DIR: config },
  });
  t.equal(whoami.stdout, `${result.server}\n`, `the CLI client under Deno gets the same permanent IP over TLS: ${whoami.stderr}`);
  t.match(whoami.stderr, /trusting the relay at .* on first use/, 'and pinned the relay');

  relay.child.kill('SIGTERM');
  const stopped = await relay.exited(20_000);
  t.equal(stopped.code, 0, `the Deno relay closes on SIGTERM and exits 0: ${stopped.stderr}`);
  t.equal(stopped.stdout, line, 'one stdout line, as under Node');
  // What Deno wrote, Node reads: the same store format.
  const store = await openAddressStore({ path: db });
  t.teardown(() => store.close());
  const kept = store.lookup('127.0.0.2');
  t.equal(kept === undefined ? undefined : formatIpv4(kept), result.server, 'the mapping made under Deno is on disk');
});

t.test('under Deno: the smoke with its own in-process relay (the README command)', { skip: deno.path ? false : `Deno unavailable: ${deno.why}` }, async (t) => {
  const smoke = await run(deno.path as string, ['run', ...CLIENT_PERMISSIONS, 'scripts/deno-smoke.ts'], 60_000, { cwd: ROOT, env });
  t.equal(smoke.code, 0, smoke.stderr);
  t.match(JSON.parse(smoke.stdout) as unknown, { runtime: 'deno', relay: 'in-process', bytesEachWay: 2 * 1024 * 1024 });
});
