/** Debian's Chromium driven by playwright-core, for the dashboard specs. */
import type { Test } from 'tap';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WAIT_MS } from './wait.ts';

/** Debian's package; .ci/install-chromium.sh installs it. */
export const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Chromium, or a failure: CI installs it (.ci/install-chromium.sh), so a missing one is a fault, not a skip. */
export async function launch(t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash .ci/install-chromium.sh\` (CI does)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, timeout: WAIT_MS });
  // The default launch context is a fresh temporary profile, removed on close.
  t.teardown(() => browser.close());
  return browser;
}

/** A page of `width`×`height` in the light scheme whose every wait fails after WAIT_MS. */
export async function newPage(browser: Browser, width: number, height: number): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height }, colorScheme: 'light' });
  // Every locator wait, click and waitForFunction below fails after this, naming what it waited on.
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  return page;
}

/**
 * Waits until the page expression `expression` is truthy; on timeout fails with `what` and what
 * `report` (another page expression) says then. Expressions are strings: the specs compile
 * without the DOM library.
 */
export async function waitInPage(page: Page, what: string, expression: string, report = expression): Promise<void> {
  try {
    await page.waitForFunction(expression, undefined, { timeout: WAIT_MS });
  } catch (error) {
    const seen = await page.evaluate(report).catch((e: unknown) => `(unreadable: ${String(e)})`);
    throw new Error(`${what}: not within ${WAIT_MS} ms (page has ${JSON.stringify(seen)}); ${String(error)}`);
  }
}
