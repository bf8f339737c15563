/**
 * The dashboard in Debian's Chromium, against a live relay: what a client row, the machine
 * diagrams and the live badge tell, and what happens when the live stream goes. The diagrams'
 * layout at several sizes is dashboard-layout.spec.ts.
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import type { Page } from 'playwright-core';
import { formatIpv4 } from '../../protocol/index.ts';
import { machinesOf } from '../../machines/index.ts';
import { observedRelay, openPair } from './observed-relay.ts';
import { cuttableProxy } from './cuttable-proxy.ts';
import { launch, newPage, waitInPage } from './browser.ts';
import { summarisePng } from './png.ts';
import { fetchWithin, waiter, within } from './wait.ts';

/** The opacity dashboard.css gives figures while the live stream is down. */
const STALE_OPACITY = '0.45';

/** A client row of the page as header → cell text, or null when there is no such row. */
const clientRow = (id: number) => `(() => {
  const table = document.getElementById('clients');
  const heads = [...table.tHead.rows[0].cells].map((c) => c.textContent.trim());
  const row = table.querySelector('tbody tr[data-key="${id}"]');
  return row ? Object.fromEntries([...row.cells].map((c, i) => [heads[i], c.textContent.trim()])) : null;
})()`;

/** Computed opacity of each figure the page dims while the stream is down, by selector. */
const FIGURE_OPACITY = `(() => Object.fromEntries(['#stat-clients', '#stat-bytes', '#clients tbody', '#sockets tbody', '#clients-count', '.machine svg'].map((s) => [s, getComputedStyle(document.querySelector(s)).opacity])))()`;

/** The figures whose opacity is not 1, with their opacity. */
async function dimmed(page: Page): Promise<Record<string, string>> {
  const opacities = (await page.evaluate(FIGURE_OPACITY)) as Record<string, string>;
  return Object.fromEntries(Object.entries(opacities).filter(([, o]) => o !== '1'));
}

t.test('the dashboard tells clients apart, follows the relay live, draws only relay machines, and dims stale figures', async (t) => {
  const observed = await observedRelay(t, { pushIntervalMs: 20 });
  const { relay, open } = observed;
  // The browser talks to the relay's HTTP side through a proxy the spec can cut.
  const proxy = await cuttableProxy(t, observed.http.port);
  const browser = await launch(t);
  const page = await newPage(browser, 1280, 800);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let navigations = 0;
  page.on('framenavigated', () => navigations++);

  await page.goto(proxy.url);
  await page.locator('#live[data-state="live"]').waitFor();
  t.equal(await page.locator('#clients-empty').isVisible(), true, 'starts with no clients');

  // Two connections from one machine (same real and virtual IP) and one from another.
  const a = await open('127.0.0.2');
  const a2 = await open('127.0.0.2');
  const b = await open('127.0.0.3');
  const va = formatIpv4(a.virtualIp.ip);
  const vb = formatIpv4(b.virtualIp.ip);
  t.equal(formatIpv4(a2.virtualIp.ip), va, 'one machine, one virtual IP');
  for (let port = 7001; port <= 7006; port++) await a.client.bind(port);
  const { connectionId } = await openPair(a, b, 6000);
  const [idA, idA2] = relay.status().clients.filter((c) => c.realIp === '127.0.0.2').map((c) => c.id).sort((x, y) => x - y);
  const idB = relay.status().clients.find((c) => c.realIp === '127.0.0.3')!.id;

  // a has 7001–7006 and the source port of the pair: the first four, then how many more.
  await waitInPage(page, 'client a shows its ports', `${clientRow(idA!)}?.Ports === '7001, 7002, 7003, 7004 +3'`, clientRow(idA!));
  t.match(await page.evaluate(clientRow(idA!)), { '#': String(idA), 'Virtual IP': va, 'Real IP': '127.0.0.2', Ports: '7001, 7002, 7003, 7004 +3', Sockets: '1' }, 'client a: id, virtual and real IP, first ports and count, sockets');
  t.match(await page.evaluate(clientRow(idA2!)), { '#': String(idA2), 'Virtual IP': va, 'Real IP': '127.0.0.2', Ports: '—', Sockets: '0' }, 'its second connection: same IPs, its own id, no ports, no sockets');
  await waitInPage(page, 'client b shows its port', `${clientRow(idB)}?.Ports === '6000'`, clientRow(idB));
  t.match(await page.evaluate(clientRow(idB)), { '#': String(idB), 'Virtual IP': vb, 'Real IP': '127.0.0.3', Ports: '6000', Sockets: '1' }, 'client b');
  t.equal(await page.locator('#clients thead th').first().innerText(), '#', 'the id comes first');

  const socketRow = page.locator(`#sockets tbody tr[data-key="${connectionId}"]`);
  await socketRow.waitFor();
  const text = await socketRow.innerText();
  t.match(text, `${vb}:6000`, 'the listening end');
  t.match(text, va, 'the connecting end');
  t.match(text, 'active.open', 'its machine state');
  t.equal(navigations, 1, 'no reload: one navigation only');

  // Only relay-side machines, chosen by the registry, and every machine the relay ran among them.
  const drawn = (await page.evaluate(`[...document.querySelectorAll('.machine')].map((m) => m.dataset.machine)`)) as string[];
  const relaySide = machinesOf('relay').map((m) => m.machine.id);
  t.same([...drawn].sort(), [...relaySide].sort(), 'the diagrams are the registry’s relay-side machines');
  for (const m of machinesOf('client')) t.notOk(drawn.includes(m.machine.id), `no ${m.machine.id} diagram (client side: always 0 live on a relay)`);
  for (const id of observed.ranMachines) t.ok(drawn.includes(id), `${id}, which the relay ran, is drawn`);
  for (const id of drawn) {
    // Scaled down on a narrow page, each diagram links to itself at full size.
    const href = await page.locator(`.machine[data-machine="${id}"] a.full`).getAttribute('href');
    const full = await fetchWithin(new URL(href ?? '', `${proxy.url}/`).href);
    t.match(await full.text(), new RegExp(`^<svg [^>]*data-machine="${id}"`), `${id}: the full-size link opens its diagram`);
  }
  await waitInPage(page, 'relayConnection counts three live actors', `document.querySelector('.machine[data-machine="relayConnection"] .count').textContent === '3 live'`, `document.querySelector('.machine[data-machine="relayConnection"] .count').textContent`);

  const litState = 'svg[data-machine="socketPair"] g.state.active[data-state="socketPair.active.open"]';
  await page.locator(litState).waitFor();
  t.equal(await page.locator(`${litState} .badge text`).textContent(), '1');
  t.equal(await page.locator('svg[data-machine="socketPair"] g.state.active[data-state="socketPair.requested"]').count(), 0, 'only the current state is lit');
  t.equal(await page.evaluate(`getComputedStyle(document.querySelector('${litState} rect')).fill`), 'rgb(99, 102, 241)', 'the highlighted state is painted in the accent colour');
  await socketRow.hover();
  await page.locator('svg[data-machine="socketPair"] g.state.focus[data-state="socketPair.active.open"]').waitFor();

  // What a user sees: a full viewport, light, then dark after the theme button.
  const light = summarisePng(await page.screenshot());
  t.match(light, { width: 1280, height: 800 }, 'light screenshot: the viewport');
  t.ok(light.colours > 50, `light screenshot is not blank (${light.colours} colours)`);
  t.ok(light.meanLuminance > 170, `light theme is light (mean luminance ${light.meanLuminance.toFixed(0)})`);
  await page.locator('#theme').click();
  t.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
  const dark = summarisePng(await page.screenshot());
  t.match(dark, { width: 1280, height: 800 }, 'dark screenshot: the viewport');
  t.ok(dark.colours > 50, `dark screenshot is not blank (${dark.colours} colours)`);
  t.ok(dark.meanLuminance < 80, `dark theme is dark (mean luminance ${dark.meanLuminance.toFixed(0)})`);

  t.same(await dimmed(page), {}, 'live: nothing dimmed');
  // The relay's HTTP side goes away: figures stay, dimmed, and the page says it is reconnecting.
  proxy.cut();
  await waitInPage(page, 'the badge says reconnecting', `document.getElementById('live-text').textContent === 'reconnecting'`, `document.getElementById('live-text').textContent`);
  await waitInPage(page, 'every figure is dimmed', `Object.values(${FIGURE_OPACITY}).every((o) => o === '${STALE_OPACITY}')`, FIGURE_OPACITY);
  t.equal(await page.evaluate(`document.body.classList.contains('stale')`), true, 'the page is marked stale');
  t.equal(await page.locator('#stat-clients').innerText(), '3', 'the last figure stays on the page');

  // It comes back: fresh figures (a client that joined meanwhile), not dimmed.
  await open('127.0.0.4');
  proxy.restore();
  await waitInPage(page, 'the page is live again', `document.getElementById('live').dataset.state === 'live'`, `document.getElementById('live-text').textContent`);
  await waitInPage(page, 'the new client is counted', `document.getElementById('stat-clients').textContent === '4'`, `document.getElementById('stat-clients').textContent`);
  t.same(await dimmed(page), {}, 'live again: nothing dimmed');
  t.equal(await page.evaluate(`document.body.classList.contains('stale')`), false, 'no longer stale');
  t.equal(navigations, 1, 'it reconnected without a reload');
  t.same(errors, [], 'no script errors');
});

/** A subscriber straight to the relay's /api/events (not through the proxy), once it has its stream. */
function subscribe(t: Test, url: string): Promise<http.ClientRequest> {
  const stream = new Promise<http.ClientRequest>((resolve, reject) => {
    const req = http.get(`${url}/api/events`, (res) => {
      if (res.statusCode === 200) resolve(req);
      else reject(new Error(`/api/events answered ${res.statusCode}`));
    });
    req.on('error', (error) => reject(error));
    t.teardown(() => req.destroy());
  });
  return within('a direct subscriber gets its stream', stream);
}

t.test('refused its stream (503 at --http-max-streams), the page says so, keeps retrying and comes back', async (t) => {
  const observed = await observedRelay(t, { maxEventStreams: 1, pushIntervalMs: 20 });
  const server = observed.http;
  const proxy = await cuttableProxy(t, server.port);
  const browser = await launch(t);
  const page = await newPage(browser, 1280, 800);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(proxy.url);
  await page.locator('#live[data-state="live"]').waitFor();
  await page.locator('.machine svg').first().waitFor();

  // The page's stream goes, and another subscriber takes the only slot before the page is back.
  const { wake, until } = waiter();
  server.streams.on('stream.closed', wake);
  proxy.cut();
  await until('the relay sees the page’s stream close', () => server.streams.size === 0);
  const other = await subscribe(t, server.url);
  proxy.restore();
  // EventSource gives up for good on a 503; the page must not.
  await waitInPage(page, 'the page says it is offline', `document.getElementById('live').dataset.state === 'offline'`, `document.getElementById('live-text').textContent`);
  t.equal(await page.locator('#live-text').innerText(), 'offline, retrying');
  t.equal(Object.keys(await dimmed(page)).length, 6, 'every figure dimmed while offline');

  other.destroy();
  await waitInPage(page, 'the page is live again after the slot frees', `document.getElementById('live').dataset.state === 'live'`, `document.getElementById('live-text').textContent`);
  t.same(await dimmed(page), {}, 'nothing dimmed once live');
  t.same(errors, [], 'no script errors');
});
