/**
 * The client in Chromium (docs/CLIENT.md "From a browser"): the example page served by the relay
 * loads /alphanet.js, connects over WebSocket and shows its virtual IP; a Node client over TCP
 * and the page exchange 1 MiB each way through a virtual socket, every byte checked in the page
 * and in Node — over ws, and over wss from a page served over https by a relay with TLS (its
 * self-signed certificate accepted as a user would, here by ignoreHTTPSErrors); the page's echo
 * (the example) answers a Node client. Chromium must be installed
 * (CI installs it): a missing one fails the spec.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { launch, newPage, waitInPage } from '../observe/browser.ts';
import { makeIdentity } from '../helpers/tls-identity.ts';
import { within } from '../observe/wait.ts';
import { clientFor, pseudoRandom, readAll, relayFor, sha256 } from './fixtures.ts';

const MIB = 1024 * 1024;

/**
 * Page code (a string: specs compile without the DOM library): connect to the relay that served
 * the page, listen on `port`, and for the one connection check it receives exactly
 * pseudoRandom(seedIn, MIB) (same xorshift as fixtures.ts) while it sends pseudoRandom(seedOut, MIB).
 */
const PAGE_EXCHANGE = `async ({ port, seedIn, seedOut, bytes }) => {
  const { connect } = await import('/alphanet.js');
  const pseudoRandom = (seed, n) => {
    const out = new Uint8Array(n);
    const view = new DataView(out.buffer);
    let x = seed >>> 0 || 1;
    let i = 0;
    for (; i + 4 <= n; i += 4) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; view.setUint32(i, x >>> 0); }
    for (; i < n; i++) out[i] = i & 255;
    return out;
  };
  const client = await connect();
  const server = await client.listen(port);
  window.pageVirtualIp = client.virtualIp;
  const conn = await server.accept();
  const expected = pseudoRandom(seedIn, bytes);
  const sending = (async () => { await conn.send(pseudoRandom(seedOut, bytes)); await conn.end(); })();
  let received = 0;
  let firstMismatch = -1;
  for await (const chunk of conn) {
    for (let i = 0; i < chunk.length; i++) {
      if (firstMismatch < 0 && (received + i >= bytes || chunk[i] !== expected[received + i])) firstMismatch = received + i;
    }
    received += chunk.length;
  }
  await sending;
  let duplexError = '';
  try { conn.duplex(); } catch (error) { duplexError = error.code; }
  const result = { virtualIp: client.virtualIp, relay: client.relay, received, firstMismatch, duplexError, fingerprint: client.fingerprint ?? 'none' };
  await client.close();
  return result;
}`;

t.test('Chromium: the page connects over WebSocket and trades 1 MiB each way with a Node client, every byte checked', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const origin = `http://127.0.0.1:${relay.websocket!.port}`;
  const browser = await launch(t);
  const page = await newPage(browser, 800, 600);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${origin}/`);

  const port = 9;
  const exchange = page.evaluate(`(${PAGE_EXCHANGE})(${JSON.stringify({ port, seedIn: 31, seedOut: 32, bytes: MIB })})`) as Promise<{
    virtualIp: string;
    relay: string;
    received: number;
    firstMismatch: number;
    duplexError: string;
    fingerprint: string;
  }>;
  await waitInPage(page, 'the page knows its virtual IP', 'window.pageVirtualIp !== undefined', 'String(window.pageVirtualIp)');
  const pageIp = (await page.evaluate('window.pageVirtualIp')) as string;
  // A browser client has no identity key, so its Node peers connect with e2e off (docs/CLIENT.md "From a browser").
  const node = await clientFor(t, relay, 3, { e2e: false });
  const conn = await node.connect({ address: pageIp, port });
  t.equal(conn.peerKey, undefined, 'the relay announced no key for the page: it proved none');
  const up = pseudoRandom(31, MIB);
  const [down] = await Promise.all([
    readAll(conn),
    (async () => {
      await conn.send(up);
      await conn.end();
    })(),
  ]);
  const result = await within('the page finishes its exchange', exchange);
  t.equal(result.virtualIp, pageIp);
  t.equal(result.relay, `ws://127.0.0.1:${relay.websocket!.port}/alphanet`, 'without a url the page dials the relay that served it');
  t.equal(result.received, MIB, 'the page received every byte');
  t.equal(result.firstMismatch, -1, 'the page found every byte as sent');
  t.equal(down.length, MIB, 'Node received every byte');
  t.equal(sha256(down), sha256(pseudoRandom(32, MIB)), 'Node found every byte as the page sent it');
  t.equal(result.duplexError, 'ERR_UNSUPPORTED', 'the Duplex view says it is Node-only');
  t.equal(result.fingerprint, 'none', 'the page has no identity key (Hello version 1)');
  const realIps = relay.status().clients.map((c) => c.realIp);
  t.ok(realIps.includes('127.0.0.3'), 'the Node client is listed');
  t.same(errors, [], 'no error in the page');
});

t.test('Chromium over wss: a page served over https by a relay with TLS trades 1 MiB each way with a Node client over TLS', async (t) => {
  const identity = await makeIdentity(t);
  const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0 } });
  t.match(relay.websocket!.url, /^wss:/);
  const browser = await launch(t);
  // The browser judges the relay's certificate by its own authorities: a self-signed one must be
  // accepted (a user's exception, here ignoreHTTPSErrors) or replaced by a real one (docs/CLIENT.md).
  const page = await browser.newPage({ viewport: { width: 800, height: 600 }, ignoreHTTPSErrors: true });
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`https://127.0.0.1:${relay.websocket!.port}/`);
  const port = 11;
  const exchange = page.evaluate(`(${PAGE_EXCHANGE})(${JSON.stringify({ port, seedIn: 51, seedOut: 52, bytes: MIB })})`) as Promise<{
    virtualIp: string;
    relay: string;
    received: number;
    firstMismatch: number;
  }>;
  await waitInPage(page, 'the page knows its virtual IP', 'window.pageVirtualIp !== undefined', 'String(window.pageVirtualIp)');
  const pageIp = (await page.evaluate('window.pageVirtualIp')) as string;
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-known-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const node = await clientFor(t, relay, 6, { e2e: false, tls: { knownRelaysFile: path.join(dir, 'known-relays'), fingerprint: identity.fingerprint } });
  const conn = await node.connect({ address: pageIp, port });
  const [down] = await Promise.all([readAll(conn), conn.send(pseudoRandom(51, MIB)).then(() => conn.end())]);
  const result = await within('the page finishes its exchange', exchange);
  t.equal(result.relay, `wss://127.0.0.1:${relay.websocket!.port}/alphanet`, 'a page served over https dials wss');
  t.equal(result.received, MIB, 'the page received every byte');
  t.equal(result.firstMismatch, -1, 'the page found every byte as sent');
  t.equal(sha256(down), sha256(pseudoRandom(52, MIB)), 'Node found every byte as the page sent it');
  t.ok(relay.status().clients.some((c) => c.realIp === '127.0.0.1'), 'the page is a client of the relay');
  t.same(errors, [], 'no error in the page');
});

t.test('Chromium: the example page shows its virtual IP and echoes a Node client', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const browser = await launch(t);
  const page = await newPage(browser, 800, 600);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`http://127.0.0.1:${relay.websocket!.port}/`);
  const vipText = "document.querySelector('#vip').textContent";
  await waitInPage(page, 'the example shows its virtual IP', `/^10\\.0\\.\\d+\\.\\d+$/.test(${vipText})`, vipText);
  const pageIp = (await page.evaluate(vipText)) as string;
  const node = await clientFor(t, relay, 4, { e2e: false });
  const conn = await node.connect({ address: pageIp, port: 7 });
  const message = pseudoRandom(41, 200_000);
  const [echoed] = await Promise.all([readAll(conn), conn.send(message).then(() => conn.end())]);
  t.equal(sha256(echoed), sha256(message), 'the page echoed every byte');
  await waitInPage(page, 'the example logs the echo', `document.querySelector('#log').textContent.includes('echoed 200000 bytes')`, "document.querySelector('#log').textContent");
  t.same(errors, [], 'no error in the page');
});

t.test('Chromium: datagrams to and from the page keep their bytes and boundaries', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const browser = await launch(t);
  const page = await newPage(browser, 800, 600);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`http://127.0.0.1:${relay.websocket!.port}/alphanet.js`);
  // The page echoes three datagrams on port 5, each reversed, then reports what it saw.
  const echoing = page.evaluate(`(async () => {
    const { connect } = await import('/alphanet.js');
    const client = await connect();
    const sock = await client.datagram(5);
    window.datagramIp = client.virtualIp;
    const seen = [];
    // Not for-await with a break: that would close the socket before the last echo leaves
    // (datagrams go out a turn later, in one batch).
    const messages = sock[Symbol.asyncIterator]();
    while (seen.length < 3) {
      const { value: message } = await messages.next();
      seen.push({ from: message.address + ':' + message.port, bytes: [...message.bytes], isUint8Array: message.bytes instanceof Uint8Array });
      sock.send(message.address, message.port, message.bytes.slice().reverse());
    }
    return seen;
  })()`) as Promise<Array<{ from: string; bytes: number[]; isUint8Array: boolean }>>;
  await waitInPage(page, 'the page has a datagram port', 'window.datagramIp !== undefined', 'String(window.datagramIp)');
  const pageIp = (await page.evaluate('window.datagramIp')) as string;
  const node = await clientFor(t, relay, 5);
  const sock = await node.datagram(6);
  const iterator = sock[Symbol.asyncIterator]();
  const sent = [new Uint8Array([1, 2, 3]), new Uint8Array([]), new TextEncoder().encode('héllo')];
  const back: number[][] = [];
  for (const bytes of sent) {
    t.ok(sock.send(pageIp, 5, bytes), 'sent');
    const reply = await within('the page echoes a datagram', iterator.next());
    back.push([...(reply.value as { bytes: Uint8Array }).bytes]);
  }
  t.same(back, sent.map((b) => [...b].reverse()), 'each datagram came back whole, reversed by the page');
  const seen = await within('the page reports', echoing);
  t.same(seen.map((s) => s.bytes), sent.map((b) => [...b]), 'the page got each datagram whole, boundaries kept');
  t.ok(seen.every((s) => s.isUint8Array && s.from === `${node.virtualIp}:6`), 'from the Node client, as Uint8Arrays');
  t.same(errors, [], 'no error in the page');
});
