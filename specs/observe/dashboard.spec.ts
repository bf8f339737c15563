import t from 'tap';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { formatIpv4 } from '../../protocol/index.ts';
import { observedRelay, openPair } from './observed-relay.ts';
import { discoverMachines } from '../../actors/observe/machine-export.ts';

const CHROMIUM = '/usr/bin/chromium';
const UI_TIMEOUT_MS = 10_000;
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Runs in the page: every way a diagram can be unreadable, as messages (none when all is well).
 * Boxes are compared on screen (getBoundingClientRect), so scaling to a narrow page counts too.
 */
const LAYOUT_PROBLEMS = `(() => {
  const out = [];
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const inside = (inner, outer) => inner.left >= outer.left - 0.5 && inner.right <= outer.right + 0.5 && inner.top >= outer.top - 0.5 && inner.bottom <= outer.bottom + 0.5;
  for (const svg of document.querySelectorAll('.machine svg')) {
    const id = svg.dataset.machine;
    const drawing = svg.getBoundingClientRect();
    const host = svg.parentElement.getBoundingClientRect();
    if (drawing.right > host.right + 0.5 || drawing.left < host.left - 0.5) out.push(id + ': drawn ' + drawing.width + ' px wide in ' + host.width + ' px: clipped');
    const labels = [...svg.querySelectorAll('.edge-label')].map((g) => ({ text: g.textContent, box: g.querySelector('rect').getBoundingClientRect(), glyphs: g.querySelector('text').getBoundingClientRect() }));
    for (let i = 0; i < labels.length; i++) {
      if (!inside(labels[i].glyphs, labels[i].box)) out.push(id + ': label "' + labels[i].text + '" overflows its box');
      if (!inside(labels[i].box, drawing)) out.push(id + ': label "' + labels[i].text + '" outside the drawing');
      for (let j = i + 1; j < labels.length; j++) if (overlap(labels[i].box, labels[j].box)) out.push(id + ': labels "' + labels[i].text + '" and "' + labels[j].text + '" overlap');
    }
    for (const g of svg.querySelectorAll('g.state')) {
      const box = g.querySelector(':scope > rect').getBoundingClientRect();
      const text = g.querySelector(':scope > text');
      if (!inside(text.getBoundingClientRect(), box)) out.push(id + ': "' + text.textContent + '" does not fit its state');
      if (!inside(box, drawing)) out.push(id + ': state ' + g.dataset.state + ' outside the drawing');
      if (g.classList.contains('leaf')) for (const l of labels) if (overlap(l.box, box)) out.push(id + ': label "' + l.text + '" covers state ' + g.dataset.state);
    }
  }
  return out;
})()`;

t.test('the dashboard shows clients and socket connections live, and highlights machine states', async (t) => {
  // No skip: CI installs Chromium with .ci/install-chromium.sh, and a missing browser is a failure.
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} exists (run .ci/install-chromium.sh)`);
  const observed = await observedRelay(t, { pushIntervalMs: 20 });
  const { http: server, open } = observed;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  // The default launch context is a fresh temporary profile, removed on close.
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 }, colorScheme: 'light' });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let navigations = 0;
  page.on('framenavigated', () => navigations++);

  await page.goto(server.url);
  await page.locator('#live[data-state="live"]').waitFor({ timeout: UI_TIMEOUT_MS });
  t.equal(await page.locator('#clients-empty').isVisible(), true, 'starts with no clients');

  const a = await open('127.0.0.2');
  const va = formatIpv4(a.virtualIp.ip);
  const row = page.locator('#clients tbody tr', { hasText: va });
  await row.waitFor({ timeout: UI_TIMEOUT_MS });
  t.match(await row.innerText(), /127\.0\.0\.2/, 'real IP beside the virtual IP');
  const clientId = observed.relay.status().clients[0]!.id;
  t.equal(await row.locator('td').first().innerText(), String(clientId), 'the client id comes first, so two connections of one machine differ');

  const b = await open('127.0.0.3');
  const vb = formatIpv4(b.virtualIp.ip);
  const { connectionId } = await openPair(a, b, 6000);
  const socketRow = page.locator(`#sockets tbody tr[data-key="${connectionId}"]`);
  await socketRow.waitFor({ timeout: UI_TIMEOUT_MS });
  const text = await socketRow.innerText();
  t.match(text, `${vb}:6000`, 'the listening end');
  t.match(text, va, 'the connecting end');
  t.match(text, 'active.open', 'its machine state');
  const rowB = page.locator('#clients tbody tr', { hasText: vb });
  await rowB.locator('td.ports', { hasText: '6000' }).waitFor({ timeout: UI_TIMEOUT_MS });
  t.equal(await rowB.locator('td').nth(4).innerText(), '1', 'its socket count');
  t.equal(navigations, 1, 'no reload: one navigation only');

  const active = page.locator('svg[data-machine="socketPair"] g.state.active[data-state="socketPair.active.open"]');
  await active.waitFor({ timeout: UI_TIMEOUT_MS });
  t.equal(await page.locator('svg[data-machine="socketPair"] g.state.active[data-state="socketPair.active.open"] .badge text').textContent(), '1');
  t.equal(await page.locator('svg[data-machine="socketPair"] g.state.active[data-state="socketPair.requested"]').count(), 0, 'only the current state is lit');
  // Expressions as strings: the specs compile without the DOM library.
  const fill = await page.evaluate(
    `getComputedStyle(document.querySelector('svg[data-machine="socketPair"] g.state.active[data-state="socketPair.active.open"] rect')).fill`,
  );
  t.equal(fill, 'rgb(99, 102, 241)', 'the highlighted state is painted in the accent colour');

  await socketRow.hover();
  await page.locator('svg[data-machine="socketPair"] g.state.focus[data-state="socketPair.active.open"]').waitFor({ timeout: UI_TIMEOUT_MS });
  await page.screenshot({ path: path.join(tmpdir(), 'alphanet-dashboard-light.png'), fullPage: true });
  await page.locator('#theme').click();
  t.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
  await page.screenshot({ path: path.join(tmpdir(), 'alphanet-dashboard-dark.png'), fullPage: true });
  t.same(
    await page.evaluate(`[...document.querySelectorAll('.machine')].map((m) => m.dataset.machine)`),
    ['relayConnection', 'socketPair'],
    'only the machines a relay runs',
  );

  // The stream goes down: figures stay, dimmed, and the page says so.
  await server.close();
  await page.locator('#live:not([data-state="live"])').waitFor({ timeout: UI_TIMEOUT_MS });
  await page.waitForFunction(`getComputedStyle(document.getElementById('stat-clients')).opacity === '0.45'`, undefined, { timeout: UI_TIMEOUT_MS });
  t.equal(await page.locator('#stat-clients').innerText(), '2', 'the last figure stays on the page');
  t.same(errors, [], 'no script errors');
});

t.test('every diagram is readable at any width: no label overlaps, every name fits, nothing clipped', async (t) => {
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} exists (run .ci/install-chromium.sh)`);
  // Every machine, the client's too, so each layout is checked.
  const machines = await discoverMachines();
  const { http: server } = await observedRelay(t, { machines });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  t.teardown(() => browser.close());
  for (const width of [1280, 900, 560]) {
    const page = await browser.newPage({ viewport: { width, height: 900 }, colorScheme: 'light' });
    await page.goto(server.url);
    await page.locator('.machine svg').first().waitFor({ timeout: UI_TIMEOUT_MS });
    t.equal(await page.locator('.machine svg').count(), machines.length, `${width} px: one diagram per machine (${machines.length})`);
    t.same(await page.evaluate(LAYOUT_PROBLEMS), [], `${width} px: no overlap, no overflow, no clipping`);
    await page.screenshot({ path: path.join(tmpdir(), `alphanet-dashboard-${width}.png`), fullPage: true });
    await page.close();
  }
});
