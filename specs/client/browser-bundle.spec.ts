/**
 * The browser bundle (scripts/browser-bundle.mjs, served at /alphanet.js): it holds no Node
 * import, the build fails naming the culprit when one slips into the graph (a `node:` module, a
 * bare built-in, or the `ws` package, whose browser stub would otherwise bundle silently), and
 * the relay serves the same bytes. Its size is printed as a comment.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { buildBrowserBundle } from '../../scripts/browser-bundle.mjs';
import { relayFor } from './fixtures.ts';
import { fetchWithin } from '../observe/wait.ts';

const decoder = new TextDecoder();

t.test('the bundle has no Node import and exports connect', async (t) => {
  const bundle = await buildBrowserBundle();
  const text = decoder.decode(bundle);
  t.notMatch(text, /\bfrom\s*["']node:|import\(\s*["']node:|require\(\s*["']/, 'no node: import or require');
  t.notMatch(text, /\bfrom\s*["'](?:net|stream|events|buffer|ws)["']/, 'no bare built-in or ws import');
  t.match(text, /export\s*\{[^}]*\bconnect\b/, 'exports connect');
  t.comment(`bundle: ${bundle.length} bytes minified, ${gzipSync(bundle).length} gzipped`);
  t.ok(bundle.length < 200 * 1024, 'under 200 KiB minified');
});

t.test('a Node-only import in the browser graph fails the build, naming it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const client = fileURLToPath(new URL('../../actors/client/browser.ts', import.meta.url));
  for (const [name, source] of [
    ['node-prefix', `import net from 'node:net'; export { net };`],
    ['bare-builtin', `import { Duplex } from 'stream'; export { Duplex };`],
    ['ws-package', `import { WebSocket } from 'ws'; export { WebSocket };`],
    ['node-client-entry', `export { connect } from ${JSON.stringify(client.replace('browser.ts', 'index.ts'))};`],
  ] as const) {
    const entry = path.join(dir, `${name}.ts`);
    await writeFile(entry, source);
    await t.rejects(buildBrowserBundle({ entry }), { message: /is Node-only and must not be in the browser bundle|Could not resolve "node:/ }, `${name}: the build fails`);
  }
});

t.test('the relay serves the bundle at /alphanet.js and the example page at /', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const origin = `http://127.0.0.1:${relay.websocket!.port}`;
  const js = await fetchWithin(`${origin}/alphanet.js`);
  t.equal(js.status, 200);
  t.match(js.headers.get('content-type'), /^text\/javascript/);
  t.equal(js.headers.get('access-control-allow-origin'), '*', 'importable by pages elsewhere (module scripts are fetched with CORS)');
  const served = new Uint8Array(await js.arrayBuffer());
  t.equal(served.length, (await buildBrowserBundle()).length, 'the same bundle the build makes');
  const page = await fetchWithin(`${origin}/`);
  t.match(await page.text(), /<script type="module" src="\.\/example\.js">/);
  t.equal((await fetchWithin(`${origin}/example.js`)).status, 200);
  t.equal((await fetchWithin(`${origin}/nope`)).status, 404);
  t.equal((await fetchWithin(`${origin}/alphanet`)).status, 426, 'the WebSocket path over plain HTTP: Upgrade Required');
});
