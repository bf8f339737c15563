/**
 * The npm package as a user gets it: `npm pack` (which builds dist/ on prepack), the tarball
 * installed into a fresh project outside the checkout (and globally, into a temporary prefix),
 * then used from plain Node, from TypeScript and through its bin. Dependencies come from the npm
 * cache that `npm ci` filled (--prefer-offline), so this takes seconds, not a download.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { childEnv, childPids, commandLine, run, start, type Ran } from '../helpers/child-process.ts';
import { findDeno } from '../helpers/deno.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
/** pack builds with tsc, install unpacks ~30 packages: generous for a loaded 2-core machine. */
const NPM_TIMEOUT_MS = 180_000;
t.setTimeout(480_000);

interface PackageJson {
  name: string;
  version: string;
  bin: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
}
const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;

const work = await mkdtemp(path.join(tmpdir(), 'alphanet-pack-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const project = path.join(work, 'project');
const globalPrefix = path.join(work, 'global');
/** npm's own settings for the children: quiet, no audit, the cache before the network. */
const npmEnv = childEnv({ npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });
// Set by the `npm test` around this spec to the checkout: the temporary project is its own.
delete npmEnv.npm_config_local_prefix;

async function npm(args: string[], cwd: string) {
  const r = await run(NPM, [...args, '--no-audit', '--no-fund', '--prefer-offline'], NPM_TIMEOUT_MS, { cwd, env: npmEnv });
  if (r.code !== 0) throw new Error(`npm ${args.join(' ')} exited ${r.code ?? r.signal}\n${r.stderr}`);
  return r;
}

// Pack once; every test below uses this tarball.
const packed = await npm(['pack', '--json', '--pack-destination', work], ROOT);
const [packInfo] = JSON.parse(packed.stdout) as [{ filename: string; files: { path: string }[] }];
const tarball = path.join(work, packInfo.filename);
const shipped = packInfo.files.map((f) => f.path);

await mkdir(project);
await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
// @types/node as the checkout has it (so it is in the cache): a TypeScript consumer on Node has it.
const typesNode = (JSON.parse(await readFile(path.join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string }).version;
await npm(['install', tarball, `@types/node@${typesNode}`], project);

t.test('the tarball holds dist/ (JS, .d.ts, dashboard), bin and docs; no sources, specs, bench or CI', async (t) => {
  const strays = shipped.filter(
    (p) => /^(specs|bench|\.ci|scripts|examples|node_modules|coverage|data|\.tap)\//.test(p) || (p.endsWith('.ts') && !p.endsWith('.d.ts')),
  );
  t.same(strays, [], 'nothing that is not for users');
  for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'docs/CLIENT.md']) {
    t.ok(shipped.includes(file), `ships ${file}`);
  }
  // What the relay reads at run time, found relative to the compiled modules.
  for (const file of await readdir(path.join(ROOT, 'dashboard'))) t.ok(shipped.includes(`dist/dashboard/${file}`), `ships dashboard/${file}`);
  // The WebSocket port's files: the prebuilt browser bundle (no esbuild in a user's install) and the example page.
  for (const file of ['dist/browser/alphanet.js', ...(await readdir(path.join(ROOT, 'examples/browser'))).map((f) => `dist/examples/browser/${f}`)]) {
    t.ok(shipped.includes(file), `ships ${file}`);
  }
  for (const file of (await readdir(path.join(ROOT, 'machines'))).filter((f) => f.endsWith('.machine.ts'))) {
    t.ok(shipped.includes(`dist/machines/${file.replace(/\.ts$/, '.js')}`), `ships the compiled ${file}`);
  }
  const targets = [...Object.values(pkg.bin), ...Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e)))];
  for (const target of targets) t.ok(shipped.includes(target.replace(/^\.\//, '')), `package.json points at a shipped file: ${target}`);
});

t.test('plain node: an .mjs consumer imports the package, runs a relay and two clients, bytes arrive intact', async (t) => {
  const consumer = `
import { createHash } from 'node:crypto';
import { connect, openMemoryAddressStore, startRelay } from 'alphanet';
import { startRelay as startRelayFromSubpath } from 'alphanet/relay';
import { connect as connectFromSubpath } from 'alphanet/client';

const store = await openMemoryAddressStore({ subnet: '10.0.0.0/16' });
const relay = await startRelay({ store, host: '127.0.0.1', port: 0 });
const server = await connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.2' });
const client = await connect({ host: relay.host, port: relay.port, localAddress: '127.0.0.3' });
const listener = await server.listen(7);
const echoed = (async () => {
  const conn = await listener.accept();
  for await (const chunk of conn) await conn.send(chunk);
  await conn.end();
})();
const payload = new Uint8Array(1024 * 1024).map((_, i) => (i * 7919) % 251);
const conn = await client.connect({ address: server.virtualIp, port: 7 });
const reading = (async () => {
  const chunks = [];
  for await (const chunk of conn) chunks.push(chunk);
  return Buffer.concat(chunks);
})();
for (let at = 0; at < payload.length; at += 65536) await conn.send(payload.subarray(at, at + 65536));
await conn.end();
const back = await reading;
await echoed;
await client.close();
await server.close();
await relay.close();
await store.close();
const sha = (b) => createHash('sha256').update(b).digest('hex');
console.log(JSON.stringify({
  resolved: import.meta.resolve('alphanet'),
  sameModules: startRelayFromSubpath === startRelay && connectFromSubpath === connect,
  ips: [server.virtualIp, client.virtualIp],
  sent: payload.length, received: back.length, intact: sha(back) === sha(payload),
}));
`;
  await writeFile(path.join(project, 'consumer.mjs'), consumer);
  await checkConsumer(t, await run(process.execPath, ['consumer.mjs'], 60_000, { cwd: project, env: childEnv() }));
});

/** What consumer.mjs printed: it ran the installed, compiled copy and every byte came back. */
function checkConsumer(t: Test, r: Ran): void {
  t.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { resolved: string; sameModules: boolean; ips: string[]; sent: number; received: number; intact: boolean };
  t.equal(fileURLToPath(result.resolved), path.join(project, 'node_modules/alphanet/dist/index.js'), 'the installed copy, compiled');
  t.ok(result.sameModules, "'alphanet/relay' and 'alphanet/client' are the same modules as 'alphanet'");
  t.match(result.ips, [/^10\.0\.\d+\.\d+$/, /^10\.0\.\d+\.\d+$/]);
  t.not(result.ips[0], result.ips[1], 'two clients, two virtual IPs');
  t.equal(result.received, result.sent, '1 MiB echoed');
  t.ok(result.intact, 'byte for byte');
}

const deno = findDeno();
t.test('Deno: the same .mjs consumer runs the installed package', { skip: deno.path ? false : `Deno unavailable: ${deno.why}` }, async (t) => {
  const permissions = ['--allow-net=127.0.0.1,127.0.0.2,127.0.0.3', '--allow-read', '--allow-env', '--allow-sys'];
  const r = await run(deno.path as string, ['run', ...permissions, 'consumer.mjs'], 60_000, { cwd: project, env: childEnv({ NO_COLOR: '1' }) });
  checkConsumer(t, r);
});

t.test('TypeScript: a strict NodeNext consumer type-checks against the package with zero errors, and the types are real', async (t) => {
  const consumer = `
import { connect, startRelay, openMemoryAddressStore, AlphanetError, ClientError, type ConnectOptions, type Relay, type VirtualConnection } from 'alphanet';
import { expose, forward, type ExposeOptions } from 'alphanet/tunnel';
import { startRelay as startRelayFromSubpath } from 'alphanet/relay';
import { connect as connectInBrowser, type Client as BrowserClient } from 'alphanet/browser';

const store = await openMemoryAddressStore({ subnet: '10.0.0.0/16' });
const inBrowser: (options: ConnectOptions) => Promise<BrowserClient> = connectInBrowser;
console.log(inBrowser);
const relay: Relay = await startRelayFromSubpath({ store, host: '127.0.0.1', port: 0 });
const options: ConnectOptions = { host: relay.host, port: relay.port, localAddress: '127.0.0.2' };
const client = await connect(options);
const ip: string = client.virtualIp;
const conn: VirtualConnection = await client.connect({ address: ip, port: 7 });
await conn.send(new Uint8Array([1, 2, 3]));
for await (const chunk of conn) {
  const n: number = chunk.byteLength;
  console.log(n);
}
try {
  await conn.end();
} catch (error) {
  if (error instanceof AlphanetError) console.log(error.code);
}
const exposeOptions: Partial<ExposeOptions> = {};
console.log(startRelay, expose, forward, exposeOptions);
// @ts-expect-error a port is a number: the types are checked, not any
await connect({ host: '127.0.0.1', port: 'x' });
await conn.send('text is sent as UTF-8');
// @ts-expect-error send() takes bytes or a string, not a number
await conn.send(42);
// Internal methods are stripped from the published types (stripInternal): the client calls them.
// @ts-expect-error receiveData is internal
conn.receiveData([new Uint8Array(1)]);
// @ts-expect-error fail is internal
conn.fail(new ClientError('ERR_RELAY_LOST', 'x'));
// The exposed actors are read-only views: no send().
// @ts-expect-error client.actor cannot be sent events
client.actor.send({ type: 'client.close' });
// @ts-expect-error nor can a connection's
conn.actor.send({ type: 'socket.close' });
const state: string = client.state + conn.state + String(client.actor.getSnapshot().value);
client.actor.subscribe((snapshot) => console.log(state, snapshot.status));
`;
  await writeFile(path.join(project, 'consumer.ts'), consumer);
  // Node's own resolution, and a bundler's (Vite, esbuild): both read the exports map's types.
  const resolutions = [
    { module: 'NodeNext', moduleResolution: 'NodeNext' },
    { module: 'ESNext', moduleResolution: 'Bundler' },
  ];
  for (const resolution of resolutions) {
    const config = `tsconfig.${resolution.moduleResolution}.json`;
    await writeFile(
      path.join(project, config),
      JSON.stringify({ compilerOptions: { target: 'ES2022', ...resolution, strict: true, noEmit: true, types: ['node'] }, files: ['consumer.ts'] }),
    );
    // No skipLibCheck: the package's own .d.ts files are checked too.
    const r = await run(process.execPath, [TSC, '--noEmit', '-p', config], 120_000, { cwd: project, env: childEnv() });
    t.equal(r.stdout + r.stderr, '', `no diagnostics (moduleResolution ${resolution.moduleResolution})`);
    t.equal(r.code, 0);
  }
});

t.test('the bin: npx inside the project and a global install both run the compiled CLI', async (t) => {
  const npx = await run(NPM, ['exec', '--no', '--', 'alphanet', '--version'], 30_000, { cwd: project, env: npmEnv });
  t.equal(npx.code, 0, npx.stderr);
  t.equal(npx.stdout, `${pkg.version}\n`, 'npx alphanet --version');
  await npm(['install', '--global', '--prefix', globalPrefix, tarball], work);
  const bin = path.join(globalPrefix, 'bin/alphanet');
  const version = await run(bin, ['--version'], 30_000, { cwd: work, env: childEnv() });
  t.equal(version.stdout, `${pkg.version}\n`, version.stderr);
  const help = await run(bin, ['--help'], 30_000, { cwd: work, env: childEnv() });
  t.equal(help.code, 0, help.stderr);
  t.match(help.stdout, /relay \[options\][\s\S]*whoami[\s\S]*nc[\s\S]*expose[\s\S]*forward/);
});

t.test('the globally installed relay runs with its Node flag, serves its dashboard and machines, and stops on SIGTERM', async (t) => {
  const bin = path.join(globalPrefix, 'bin/alphanet');
  const relay = start(bin, ['relay', '--port', '0', '--http-port', '0', '--ws-port', '0', '--db', path.join(work, 'db.json'), '--log-level', 'warn'], { cwd: work, env: childEnv() });
  t.teardown(() => void relay.child.kill('SIGKILL'));
  const [, dashboard, websocket] = await relay.waitFor(
    /dashboard on (http:\/\/\S+)\n[\s\S]*listening on \S+ \(TLS, fingerprint sha256:[0-9A-F:]{95}\)\nwebsocket on (wss:\/\/\S+) \(wss, fingerprint sha256:[0-9A-F:]{95}\)\n/,
    30_000,
  );
  if (process.platform === 'linux') {
    // The bin's shebang passes the flag, so node runs the relay itself; started any other way the
    // relay re-runs itself as a child with it (cli/node-flags.ts). Either way the relay has it.
    const [child] = await childPids(relay.child.pid as number);
    t.ok((await commandLine(child ?? (relay.child.pid as number))).includes('--initial-old-space-size=64'), 'the relay process has --initial-old-space-size=64');
  }
  const get = (url: string) => fetch(new URL(url, dashboard), { signal: AbortSignal.timeout(10_000) });
  const page = await get('/');
  t.equal(page.status, 200);
  const html = await page.text();
  t.match(html, /<html/);
  // Every file the page loads (scripts, styles, icons, links) is served from the package.
  const assets = [...html.matchAll(/(?:src|href)="([^"#:]+)"/g)].map((m) => m[1] as string);
  t.ok(assets.length > 0, 'the page loads files of its own');
  for (const asset of assets) t.equal((await get(asset)).status, 200, `GET ${asset}`);
  const machines = (await (await fetch(new URL('/api/machines', dashboard), { signal: AbortSignal.timeout(10_000) })).json()) as { id: string; svg: string }[];
  t.ok(machines.length > 0, 'machines found in the compiled package');
  for (const m of machines) t.match(m.svg, /^<svg/, `${m.id} has a diagram`);
  // The WebSocket port serves the prebuilt browser bundle and the example page from the package,
  // over https with the relay's self-signed certificate (the TLS default): fetch() would refuse it.
  const wsOrigin = (websocket as string).replace(/^wss:/, 'https:').replace(/\/alphanet$/, '');
  const getInsecure = (url: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = https.get(url, { rejectUnauthorized: false, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 10 s`)));
      req.on('error', reject);
    });
  const bundle = await getInsecure(`${wsOrigin}/alphanet.js`);
  t.equal(bundle.status, 200, 'GET /alphanet.js on the WebSocket port');
  t.match(bundle.body, /export\s*\{[^}]*\bconnect\b/, 'the bundle exports connect');
  t.equal((await getInsecure(`${wsOrigin}/`)).status, 200, 'GET / (the example page)');
  relay.child.kill('SIGTERM');
  const ran = await relay.exited(15_000);
  t.equal(ran.code, 0, ran.stderr);
});
