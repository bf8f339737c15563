/**
 * Every registered machine's diagram in Debian's Chromium at three viewport sizes: no two edge-label
 * boxes intersect, no label covers a state or its name, every name fits its box, and nothing is
 * clipped by its box, its viewBox or the page.
 */
import t from 'tap';
import { MACHINES } from '../../machines/index.ts';
import { observedRelay } from './observed-relay.ts';
import { launch, newPage } from './browser.ts';

/**
 * Runs in the page: every way a diagram can be unreadable, as messages (none when all is well).
 * Boxes are compared on screen (getBoundingClientRect), so scaling to a narrow page counts too.
 */
const LAYOUT_PROBLEMS = `(() => {
  const out = [];
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const inside = (inner, outer) => inner.left >= outer.left - 0.5 && inner.right <= outer.right + 0.5 && inner.top >= outer.top - 0.5 && inner.bottom <= outer.bottom + 0.5;
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth) out.push('the page scrolls sideways: ' + page.scrollWidth + ' px in ' + page.clientWidth);
  for (const svg of document.querySelectorAll('.machine svg')) {
    const id = svg.dataset.machine;
    const host = svg.parentElement;
    if (host.scrollWidth > host.clientWidth || host.scrollHeight > host.clientHeight) out.push(id + ': the diagram needs ' + host.scrollWidth + 'x' + host.scrollHeight + ' px in a ' + host.clientWidth + 'x' + host.clientHeight + ' box: clipped');
    const drawing = svg.getBoundingClientRect();
    const frame = host.getBoundingClientRect();
    if (!inside(drawing, frame)) out.push(id + ': drawn at ' + JSON.stringify(drawing) + ' outside its box ' + JSON.stringify(frame));
    // Everything drawn (paths and markers included) lies within the viewBox, or the svg cuts it.
    const view = svg.viewBox.baseVal;
    const content = svg.getBBox();
    if (content.x < view.x - 0.5 || content.y < view.y - 0.5 || content.x + content.width > view.x + view.width + 0.5 || content.y + content.height > view.y + view.height + 0.5) {
      out.push(id + ': content ' + [content.x, content.y, content.width, content.height].join(' ') + ' outside the viewBox ' + [view.x, view.y, view.width, view.height].join(' '));
    }
    const labels = [...svg.querySelectorAll('.edge-label')].map((g) => ({ text: g.textContent, box: g.querySelector('rect').getBoundingClientRect(), glyphs: g.querySelector('text').getBoundingClientRect() }));
    if (labels.length === 0) out.push(id + ': no edge labels drawn');
    for (let i = 0; i < labels.length; i++) {
      if (!inside(labels[i].glyphs, labels[i].box)) out.push(id + ': label "' + labels[i].text + '" overflows its box');
      if (!inside(labels[i].box, drawing)) out.push(id + ': label "' + labels[i].text + '" outside the drawing');
      for (let j = i + 1; j < labels.length; j++) if (overlap(labels[i].box, labels[j].box)) out.push(id + ': labels "' + labels[i].text + '" and "' + labels[j].text + '" overlap');
    }
    for (const g of svg.querySelectorAll('g.state')) {
      const box = g.querySelector(':scope > rect').getBoundingClientRect();
      const text = g.querySelector(':scope > text');
      const name = text.getBoundingClientRect();
      if (!inside(name, box)) out.push(id + ': "' + text.textContent + '" does not fit its state');
      if (!inside(box, drawing)) out.push(id + ': state ' + g.dataset.state + ' outside the drawing');
      for (const l of labels) {
        if (g.classList.contains('leaf') && overlap(l.box, box)) out.push(id + ': label "' + l.text + '" covers state ' + g.dataset.state);
        if (overlap(l.box, name)) out.push(id + ': label "' + l.text + '" covers the name of ' + g.dataset.state);
      }
    }
  }
  return out;
})()`;

t.test('every diagram is readable at any size: no label overlaps, every name fits, nothing clipped', async (t) => {
  // Every registered machine, the client side's too, so each layout is checked.
  const { http: server } = await observedRelay(t, { machines: MACHINES });
  const browser = await launch(t);
  for (const [width, height] of [[1280, 800], [800, 600], [560, 900]] as const) {
    const page = await newPage(browser, width, height);
    await page.goto(server.url);
    await page.locator('.machine svg').first().waitFor();
    t.equal(await page.locator('.machine svg').count(), MACHINES.length, `${width}×${height}: one diagram per registered machine`);
    t.same(await page.evaluate(LAYOUT_PROBLEMS), [], `${width}×${height}: no overlap, no overflow, no clipping`);
    await page.close();
  }
});
