import t from 'tap';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { formatIpv4 } from '../../protocol/index.ts';
import { observedRelay, openPair } from './observed-relay.ts';

const CHROMIUM = '/usr/bin/chromium';
const UI_TIMEOUT_MS = 10_000;

t.test('the dashboard shows clients and socket connections live, and highlights machine states', async (t) => {
  // No skip: CI installs Chromium with .ci/install-chromium.sh, and a missing browser is a failure.
  t.ok(existsSync(CHROMIUM), `${CHROMIUM} exists (run .ci/install-chromium.sh)`);
  const { http: server, open } = await observedRelay(t, { pushIntervalMs: 20 });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
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

  const b = await open('127.0.0.3');
  const vb = formatIpv4(b.virtualIp.ip);
  const { connectionId } = await openPair(a, b, 6000);
  const socketRow = page.locator(`#sockets tbody tr[data-key="${connectionId}"]`);
  await socketRow.waitFor({ timeout: UI_TIMEOUT_MS });
  const text = await socketRow.innerText();
  t.match(text, `${vb}:6000`, 'the listening end');
  t.match(text, va, 'the connecting end');
  t.match(text, 'active.open', 'its machine state');
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
  t.same(errors, [], 'no script errors');
});
