// The relay dashboard: one EventSource on /api/events carries the same JSON as /api/status
// (docs/OBSERVABILITY.md); every message redraws the tables in place, so nothing reloads.
// Plain browser JavaScript, no build step and no CDN: the relay serves this file itself.

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- theme
const THEME_KEY = 'alphanet.theme';
function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}
const storedTheme = localStorage.getItem(THEME_KEY);
applyTheme(storedTheme ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));

// ---------------------------------------------------------------- formatting
function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
function formatDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}
function formatCount(n) {
  return new Intl.NumberFormat().format(n);
}
function formatTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
// Two connections from one machine share real and virtual IP; their ports tell them apart.
function formatPorts(ports, count) {
  if (count === 0) return '—';
  const shown = ports.slice(0, 4).join(', ');
  return count > 4 ? `${shown} +${formatCount(count - 4)}` : shown;
}
const BAD_REASONS = /Violation|Error|Timeout|Malformed|TooLarge|Unknown|Unexpected|Failure|Internal/;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}
function pill(text, extra = '') {
  const td = document.createElement('td');
  const span = document.createElement('span');
  span.className = `pill ${extra}`.trim();
  span.textContent = text;
  td.append(span);
  return td;
}

// Rows are keyed by id and reused, so a row stays put (and hover stays) while its numbers change.
function syncRows(tbody, items, key, render) {
  const existing = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
  const seen = new Set();
  let previous = null;
  for (const item of items) {
    const k = String(key(item));
    seen.add(k);
    let row = existing.get(k);
    const fresh = !row;
    if (!row) {
      row = document.createElement('tr');
      row.dataset.key = k;
    }
    row.replaceChildren(...render(item));
    const next = previous ? previous.nextSibling : tbody.firstChild;
    if (next !== row) tbody.insertBefore(row, next);
    if (fresh && tbody.dataset.drawn) {
      row.classList.add('fresh');
      setTimeout(() => row.classList.remove('fresh'), 1200);
    }
    previous = row;
  }
  for (const [k, row] of existing) if (!seen.has(k)) row.remove();
  tbody.dataset.drawn = '1';
}

// ---------------------------------------------------------------- machines
const machineViews = new Map();
let focusedPair = null;
let lastStatus = null;

async function loadMachines() {
  const response = await fetch('api/machines');
  if (!response.ok) throw new Error(`api/machines: HTTP ${response.status}`);
  const machines = await response.json();
  const host = $('machines');
  host.replaceChildren();
  for (const m of machines) {
    const section = document.createElement('article');
    section.className = 'machine';
    section.dataset.machine = m.id;
    const header = document.createElement('header');
    const title = document.createElement('h3');
    title.textContent = m.id;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = `${m.source} · ${m.side} side`;
    const live = document.createElement('span');
    live.className = 'count';
    live.textContent = '0 live';
    // On a narrow page the diagram is scaled down to fit; this opens it at its own size.
    const full = document.createElement('a');
    full.className = 'full';
    full.href = `api/machines/${encodeURIComponent(m.id)}.svg`;
    full.target = '_blank';
    full.rel = 'noopener';
    full.textContent = 'full size';
    header.append(title, meta, live, full);
    const diagram = document.createElement('div');
    diagram.className = 'diagram';
    // The SVG comes from our own relay, drawn from machine definitions; nothing user-supplied.
    diagram.innerHTML = m.svg;
    section.append(header, diagram);
    host.append(section);
    machineViews.set(m.id, { svg: diagram.querySelector('svg'), live });
  }
  if (lastStatus) drawMachines(lastStatus);
}

function badgeFor(group, n) {
  let badge = group.querySelector(':scope > .badge');
  if (n <= 0 || !group.classList.contains('leaf')) {
    badge?.remove();
    return;
  }
  if (!badge) {
    const rect = group.querySelector('rect');
    const x = Number(rect.getAttribute('x')) + Number(rect.getAttribute('width'));
    const y = Number(rect.getAttribute('y'));
    badge = document.createElementNS('http://www.w3.org/2000/svg', 'g');
    badge.setAttribute('class', 'badge');
    const circle = document.createElementNS('http://www.w3.org/2000/svg', 'circle');
    circle.setAttribute('cx', String(x - 2));
    circle.setAttribute('cy', String(y + 2));
    circle.setAttribute('r', '8');
    const text = document.createElementNS('http://www.w3.org/2000/svg', 'text');
    text.setAttribute('x', String(x - 2));
    text.setAttribute('y', String(y + 5.5));
    text.setAttribute('text-anchor', 'middle');
    badge.append(circle, text);
    group.append(badge);
  }
  badge.querySelector('text').textContent = n > 99 ? '99+' : String(n);
}

// A state path like "active.endedByA" → the ids of that state and its parents.
function stateIds(machineId, path) {
  const parts = String(path).split('.');
  return parts.map((_, i) => `${machineId}.${parts.slice(0, i + 1).join('.')}`);
}

function drawMachines(status) {
  const occupancy = status.machines ?? {};
  for (const [id, view] of machineViews) {
    const occ = occupancy[id] ?? { actors: 0, states: {} };
    view.live.textContent = `${occ.actors} live`;
    for (const group of view.svg.querySelectorAll('.state')) {
      const n = occ.states[group.dataset.state] ?? 0;
      group.classList.toggle('active', n > 0);
      badgeFor(group, n);
    }
  }
  drawFocus();
}

function drawFocus() {
  const view = machineViews.get('socketPair');
  if (!view) return;
  const pair = focusedPair && lastStatus?.pairs.find((p) => p.id === focusedPair);
  const focus = new Set(pair ? stateIds('socketPair', pair.state) : []);
  for (const group of view.svg.querySelectorAll('.state')) group.classList.toggle('focus', focus.has(group.dataset.state));
}

// ---------------------------------------------------------------- status
function showMore(id, truncated, shown, total) {
  const note = $(id);
  note.hidden = !truncated;
  if (truncated) note.textContent = `Showing the first ${formatCount(shown)} of ${formatCount(total)}; page through the rest with api/status?offset=${shown}.`;
}

function draw(status) {
  lastStatus = status;
  const now = Date.now();
  const t = status.totals;
  $('relay-address').textContent = `relay ${status.host}:${status.port}`;
  $('stat-clients').textContent = formatCount(t.clientsConnected);
  $('stat-clients-hint').textContent = `${formatCount(t.hosts)} hosts · ${formatCount(t.clientsTotal)} since start`;
  $('stat-sockets').textContent = formatCount(t.pairsActive);
  $('stat-sockets-hint').textContent = `${formatCount(t.pendingRequests)} pending · ${formatCount(t.pairsTotal)} since start`;
  $('stat-bytes').textContent = formatBytes(t.bytesRelayed);
  $('stat-frames').textContent = `${formatCount(t.framesRelayed)} frames`;
  $('stat-uptime').textContent = formatDuration(status.uptimeMs);
  $('stat-started').textContent = `since ${new Date(status.startedAt).toLocaleString()}`;

  const clients = [...status.clients].sort((a, b) => a.connectedAt - b.connectedAt);
  // The status lists one capped page (docs/OBSERVABILITY.md); the counts are of everything.
  const truncated = status.list?.truncated ?? { clients: false, pairs: false };
  $('clients-count').textContent = formatCount(t.clientsConnected);
  showMore('clients-more', truncated.clients, clients.length, t.clientsConnected);
  $('clients-empty').hidden = clients.length > 0;
  syncRows($('clients').tBodies[0], clients, (c) => c.id, (c) => [
    cell(String(c.id), 'muted'),
    cell(c.virtualIp ?? '—', 'ip virtual'),
    cell(c.realIp, 'ip'),
    cell(formatPorts(c.ports, c.portCount ?? c.ports.length), 'ip ports'),
    cell(formatCount(c.sockets), 'num'),
    pill(c.state),
    cell(formatDuration(now - c.connectedAt), 'num'),
    cell(formatBytes(c.bytesIn), 'num'),
    cell(formatBytes(c.bytesOut), 'num'),
  ]);

  const pairs = [...status.pairs].sort((a, b) => a.id - b.id);
  $('sockets-count').textContent = formatCount(t.pairsLive ?? pairs.length);
  showMore('sockets-more', truncated.pairs, pairs.length, t.pairsLive ?? pairs.length);
  $('sockets-empty').hidden = pairs.length > 0;
  syncRows($('sockets').tBodies[0], pairs, (p) => p.id, (p) => [
    cell(String(p.id), 'muted'),
    cell(p.a, 'ip'),
    cell('⇄', 'arrow'),
    cell(p.b, 'ip'),
    pill(p.state),
    cell(p.openedAt > 0 ? formatDuration(now - p.openedAt) : 'opening', 'num'),
    cell(formatBytes(p.bytesAToB), 'num'),
    cell(formatBytes(p.bytesBToA), 'num'),
  ]);

  const closes = [...status.recentCloses].sort((a, b) => b.at - a.at);
  $('closes-empty').hidden = closes.length > 0;
  syncRows($('closes').tBodies[0], closes, (c) => `${c.kind}-${c.id}-${c.at}`, (c) => [
    cell(formatTime(c.at), 'muted'),
    cell(c.kind === 'pair' ? 'socket' : 'client'),
    cell(c.label, 'ip'),
    pill(c.reason, `reason-${c.reason}${BAD_REASONS.test(c.reason) ? ' bad' : ''}`),
    cell(formatDuration(c.durationMs), 'num'),
    cell(`${formatBytes(c.bytes[0])} / ${formatBytes(c.bytes[1])}`, 'num'),
  ]);

  drawMachines(status);
}

// ---------------------------------------------------------------- wiring
function setLive(state, text) {
  $('live').dataset.state = state;
  $('live-text').textContent = text;
  // While the stream is down every figure on the page is as old as the last message: dim them.
  document.body.classList.toggle('stale', state !== 'live');
}

// EventSource retries a dropped stream by itself, but gives up for good on an HTTP error (a 503
// when the relay has too many live streams, a proxy's 502): then the page retries, slower.
const RETRY_AFTER_CLOSED_MS = [1000, 2000, 5000, 10000];
let closedRetries = 0;
let machinesLoaded = null;

function loadMachinesOnce() {
  machinesLoaded ??= loadMachines().catch((error) => {
    // Tried again on the next message: the relay may have been down when the page loaded.
    machinesLoaded = null;
    console.error('machines', error);
  });
}

function connect() {
  const source = new EventSource('api/events');
  source.addEventListener('status', (event) => {
    closedRetries = 0;
    // Live only once fresh figures are in: the first message of a stream is the current status.
    setLive('live', 'live');
    draw(JSON.parse(event.data));
    loadMachinesOnce();
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      setLive('offline', 'offline, retrying');
      const delay = RETRY_AFTER_CLOSED_MS[Math.min(closedRetries++, RETRY_AFTER_CLOSED_MS.length - 1)];
      setTimeout(connect, delay);
    } else {
      setLive('connecting', 'reconnecting');
    }
  });
}

document.addEventListener('DOMContentLoaded', () => {
  $('theme').addEventListener('click', () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    applyTheme(next);
    localStorage.setItem(THEME_KEY, next);
  });
  const sockets = $('sockets').tBodies[0];
  sockets.addEventListener('mouseover', (event) => {
    const row = event.target.closest('tr');
    focusedPair = row ? Number(row.dataset.key) : null;
    drawFocus();
  });
  sockets.addEventListener('mouseleave', () => {
    focusedPair = null;
    drawFocus();
  });
  loadMachinesOnce();
  connect();
});
