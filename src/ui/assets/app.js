// faultline's dashboard. Everything it shows comes from the REST API: `/proxies` (refetched
// when `/events` says something changed, and every few seconds as a safety net), `/metrics`
// (one request per second for all proxies' counters), `/toxic-types` (the add-toxic form) and
// `/events` itself (the timeline, and the experiments that `faultline experiment run` reports
// there as they go, with `/experiments/events` for what they reported before the page
// connected).
// Every request carries `X-Faultline-UI: 1`, which the server's browser guard requires of a
// browser together with a same-origin request, and the API token when the user gave one.
'use strict';

const HISTORY_SECONDS = 300;
const STATS_INTERVAL_MS = 1000;
const RESYNC_INTERVAL_MS = 5000;
const TIMELINE_MAX = 200;
const TOKEN_KEY = 'faultline-api-token';
const RUNS_SHOWN = 3;
const PROBE_VALUES_SHOWN = 12;
const SEEN_EVENTS_MAX = 4096;

const state = {
  proxies: [], // as GET /proxies returns them, sorted by name
  fetchedAt: 0, // performance.now() when `proxies` was fetched (countdowns start there)
  types: new Map(), // toxic type name -> its description from /toxic-types
  counters: new Map(), // proxy -> {at, upstream, downstream, active, total}
  series: new Map(), // proxy -> {upstream: number[], downstream: number[]} bytes/s
  cards: new Map(), // proxy -> its card's elements
  editing: null, // {proxy, toxic} while the form edits a toxic
  streaming: false, // whether /events is connected
  runs: new Map(), // experiment run id -> its card, oldest first
  seen: new Set(), // `seq@time` of the experiment events handled (see firstSight)
  replay: null, // while the history loads: {pending: live experiment events held back}
};

// ---- REST ----------------------------------------------------------------------------

function requestHeaders(extra) {
  const headers = Object.assign({ 'X-Faultline-UI': '1' }, extra);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  return headers;
}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// A failed request shows in the status badge; a missing token says so, and a refusal by the
// server's guards is spelled out once (it names what to change).
function showFailure(error) {
  setStatus(error.status === 401 ? 'token' : 'error', error.message);
  if (error.status === 403 && showFailure.shown !== error.message) {
    showFailure.shown = error.message;
    notify(error.message);
  }
}

async function api(method, path, body) {
  const init = { method, cache: 'no-store', headers: requestHeaders() };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  if (response.status === 401) askToken('The server requires an API token.');
  if (!response.ok) {
    let message = text.trim();
    try {
      message = JSON.parse(text).error || message;
    } catch (_) { /* a plain-text error body */ }
    throw new ApiError(`${method} ${path}: ${response.status} ${message}`, response.status);
  }
  if (!text) return null;
  return path === '/metrics' ? text : JSON.parse(text);
}

const proxyPath = (name) => '/proxies/' + encodeURIComponent(name);
const toxicPath = (proxy, toxic) => proxyPath(proxy) + '/toxics/' + encodeURIComponent(toxic);

// ---- DOM helpers ---------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

// Builds an element; text always goes through textContent (names come from API users).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function notify(message) {
  const box = $('notice');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

// Runs an action from a button; failures are shown, never thrown into the console.
async function act(action) {
  try {
    await action();
    await refreshProxies();
  } catch (error) {
    notify(error.message);
  }
}

function formatBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

function formatMillis(ms) {
  if (ms < 10000) return (ms / 1000).toFixed(1) + ' s';
  const s = Math.round(ms / 1000);
  if (s < 120) return s + ' s';
  const m = Math.floor(s / 60);
  return m < 120 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

// ---- proxies -------------------------------------------------------------------------

let refreshTimer = null;
let refreshing = null;
let refreshAgain = false;

// Refetches /proxies soon; bursts of events cause one request.
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refreshProxies(); }, 50);
}

// One request at a time; a refresh asked for meanwhile runs once more after it, since the
// change that prompted it may have come after the running request was answered.
async function refreshProxies() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      try {
        const proxies = await api('GET', '/proxies');
        state.proxies = Object.values(proxies || {}).sort((a, b) => a.name.localeCompare(b.name));
        state.fetchedAt = performance.now();
        renderProxies();
      } catch (error) {
        showFailure(error);
      }
    } while (refreshAgain);
    refreshing = null;
  })();
  return refreshing;
}

function renderProxies() {
  const section = $('proxies');
  const names = new Set(state.proxies.map((p) => p.name));
  for (const [name, card] of state.cards) {
    if (!names.has(name)) {
      card.root.remove();
      state.cards.delete(name);
      state.series.delete(name);
      state.counters.delete(name);
    }
  }
  $('no-proxies').hidden = state.proxies.length > 0;
  let previous = $('no-proxies');
  for (const proxy of state.proxies) {
    let card = state.cards.get(proxy.name);
    if (!card) {
      card = buildCard(proxy.name);
      state.cards.set(proxy.name, card);
    }
    if (previous.nextSibling !== card.root) previous.after(card.root);
    previous = card.root;
    updateCard(card, proxy);
  }
  const toxics = state.proxies.reduce((n, p) => n + p.toxics.length, 0);
  $('summary').textContent =
    `${state.proxies.length} ${state.proxies.length === 1 ? 'proxy' : 'proxies'} · ` +
    `${toxics} ${toxics === 1 ? 'toxic' : 'toxics'}`;
  updateCountdowns();
  drawAllSparklines();
}

function buildCard(name) {
  const card = {};
  card.title = el('h2', {}, name);
  card.protocol = el('span', { class: 'badge protocol', hidden: true });
  card.enabled = el('span', { class: 'badge' });
  card.toggle = el('button', {
    type: 'button', class: 'toggle',
    onclick: () => act(() => api('POST', proxyPath(name), { enabled: !card.proxy.enabled })),
  });
  card.add = el('button', {
    type: 'button', class: 'primary add-toxic', onclick: () => openToxicForm(name, null),
  }, 'Add toxic');
  card.listen = el('code', { class: 'listen' });
  card.upstream = el('code', { class: 'upstream' });
  card.active = el('b', { class: 'active-connections' }, '0');
  card.total = el('span', { class: 'total-connections' }, '0');
  card.sparks = {};
  const sparkRow = el('div', { class: 'sparks' });
  for (const direction of ['upstream', 'downstream']) {
    const canvas = el('canvas', {
      class: 'sparkline', dataset: { direction }, width: 300, height: 48,
      'aria-label': `${direction} throughput, last ${HISTORY_SECONDS / 60} minutes`,
    });
    const rate = el('span', { class: 'rate', dataset: { rate: '0' } }, '0 B/s');
    const arrow = direction === 'upstream' ? '↑ client → upstream' : '↓ upstream → client';
    sparkRow.append(el('div', { class: 'spark ' + direction },
      el('div', { class: 'spark-label' }, el('span', {}, arrow), rate), canvas));
    card.sparks[direction] = { canvas, rate };
  }
  card.toxics = el('tbody');
  card.table = el('table', { class: 'toxics' },
    el('thead', {}, el('tr', {},
      ['Toxic', 'Type', 'Stream', 'Toxicity', 'Attributes', 'Timing', 'Target', '']
        .map((h) => el('th', {}, h)))),
    card.toxics);
  card.noToxics = el('p', { class: 'no-toxics' }, 'No toxics: traffic passes untouched.');
  card.root = el('article', { class: 'proxy', dataset: { proxy: name } },
    el('header', {}, card.title, card.protocol, card.enabled, el('span', { class: 'spacer' }),
      card.toggle, card.add),
    el('div', { class: 'facts' },
      el('span', {}, card.listen, ' → ', card.upstream),
      el('span', {}, card.active, ' active · ', card.total, ' total connections')),
    sparkRow, card.table, card.noToxics);
  return card;
}

function updateCard(card, proxy) {
  card.proxy = proxy;
  card.root.dataset.enabled = String(proxy.enabled);
  card.enabled.textContent = proxy.enabled ? 'enabled' : 'disabled';
  card.enabled.className = 'badge ' + (proxy.enabled ? 'on' : 'off');
  card.toggle.textContent = proxy.enabled ? 'Disable' : 'Enable';
  card.protocol.hidden = !proxy.protocol;
  card.protocol.textContent = (proxy.protocol || '') + (proxy.upstream_tls ? ' → TLS' : '');
  card.listen.textContent = proxy.listen;
  card.upstream.textContent = proxy.upstream;
  card.toxics.replaceChildren(...proxy.toxics.map((t) => toxicRow(proxy.name, t)));
  card.table.hidden = proxy.toxics.length === 0;
  card.noToxics.hidden = proxy.toxics.length > 0;
}

function describeAttributes(type, attributes) {
  const specs = new Map(((state.types.get(type) || {}).attributes || []).map((a) => [a.name, a]));
  return Object.entries(attributes || {}).map(([name, value]) => {
    const unit = (specs.get(name) || {}).unit;
    const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    const shown = unit ? `${text} ${unit}` : text;
    return el('span', { class: 'attr' }, el('span', { class: 'key' }, name), ' ', shown);
  });
}

function toxicRow(proxyName, toxic) {
  const timing = [];
  if (toxic.remaining_ms !== undefined) {
    timing.push(el('span', {
      class: 'countdown', dataset: { remaining: toxic.remaining_ms },
    }, formatMillis(toxic.remaining_ms)));
  }
  if (toxic.schedule) {
    const phase = toxic.active ? 'active' : 'paused';
    timing.push(el('span', { class: 'phase ' + phase, title: 'schedule phase' }, phase),
      el('span', { class: 'muted' },
        ` on ${formatMillis(toxic.schedule.on_ms)} / off ${formatMillis(toxic.schedule.off_ms)}`));
  }
  if (timing.length === 0) timing.push(el('span', { class: 'muted' }, 'until removed'));
  let target = el('span', { class: 'muted' }, 'all');
  if (toxic.target) {
    const parts = [];
    if (toxic.target.cidrs && toxic.target.cidrs.length) parts.push(toxic.target.cidrs.join(', '));
    if (toxic.target.fraction !== undefined && toxic.target.fraction !== 1) {
      parts.push(Math.round(toxic.target.fraction * 100) + '% of connections');
    }
    target = el('span', {}, parts.join(' · ') || 'all');
  }
  return el('tr', { dataset: { toxic: toxic.name } },
    el('td', { class: 'name' }, toxic.name),
    el('td', {}, el('span', { class: 'badge type' }, toxic.type)),
    el('td', {}, toxic.stream),
    el('td', {}, Math.round(toxic.toxicity * 100) + '%'),
    el('td', { class: 'attrs' }, describeAttributes(toxic.type, toxic.attributes)),
    el('td', { class: 'timing' }, timing),
    el('td', {}, target),
    el('td', { class: 'row-actions' },
      el('button', {
        type: 'button', class: 'ghost edit', onclick: () => openToxicForm(proxyName, toxic),
      }, 'Edit'),
      el('button', {
        type: 'button', class: 'ghost danger remove',
        onclick: () => act(() => api('DELETE', toxicPath(proxyName, toxic.name))),
      }, 'Remove')));
}

// Countdowns run locally from the remaining_ms of the last fetch; expiry arrives as an event.
function updateCountdowns() {
  const elapsed = performance.now() - state.fetchedAt;
  for (const node of document.querySelectorAll('.countdown')) {
    const left = Math.max(0, Number(node.dataset.remaining) - elapsed);
    node.textContent = formatMillis(left) + ' left';
    node.dataset.left = String(Math.round(left));
  }
}

// ---- stats and sparklines ------------------------------------------------------------

// Reads the counters of every proxy from one /metrics scrape (OpenMetrics text).
function parseMetrics(text) {
  const byProxy = new Map();
  const get = (proxy) => {
    if (!byProxy.has(proxy)) byProxy.set(proxy, { upstream: 0, downstream: 0, active: 0, total: 0 });
    return byProxy.get(proxy);
  };
  // Greedy: a label value may itself contain "} "; the sample value is always last.
  const line = /^(\w+)\{(.*)\} (\S+)$/;
  const label = /(\w+)="((?:[^"\\]|\\.)*)"/g;
  for (const row of text.split('\n')) {
    const match = line.exec(row);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of match[2].matchAll(label)) {
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    if (labels.proxy === undefined) continue;
    const value = Number(match[3]);
    const counters = get(labels.proxy);
    switch (match[1]) {
      case 'toxiproxy_proxy_sent_bytes_total': counters[labels.direction] = value; break;
      case 'faultline_connections_active': counters.active = value; break;
      case 'faultline_connections_total': counters.total = value; break;
      default: break;
    }
  }
  return byProxy;
}

async function pollStats() {
  let scraped;
  try {
    scraped = parseMetrics(await api('GET', '/metrics'));
  } catch (error) {
    showFailure(error);
    return;
  }
  if (state.streaming) setStatus('live');
  const now = performance.now();
  for (const [name, counters] of scraped) {
    const previous = state.counters.get(name);
    let series = state.series.get(name);
    if (!series) {
      series = { upstream: [], downstream: [] };
      state.series.set(name, series);
    }
    for (const direction of ['upstream', 'downstream']) {
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      const delta = previous ? counters[direction] - previous[direction] : 0;
      // A counter that went down belongs to a proxy deleted and created again.
      series[direction].push(seconds > 0 && delta > 0 ? delta / seconds : 0);
      if (series[direction].length > HISTORY_SECONDS) series[direction].shift();
    }
    state.counters.set(name, Object.assign({ at: now }, counters));
    const card = state.cards.get(name);
    if (card) {
      card.active.textContent = String(counters.active);
      card.total.textContent = String(counters.total);
    }
  }
  drawAllSparklines();
}

function drawAllSparklines() {
  for (const [name, card] of state.cards) {
    const series = state.series.get(name) || { upstream: [], downstream: [] };
    for (const direction of ['upstream', 'downstream']) {
      const values = series[direction];
      const { canvas, rate } = card.sparks[direction];
      const current = values.length ? values[values.length - 1] : 0;
      rate.textContent = formatBytes(current) + '/s';
      rate.dataset.rate = String(Math.round(current));
      drawSparkline(canvas, values, direction);
    }
  }
}

// Sizes `canvas` to its box in device pixels and clears it; returns what drawing needs.
function clearCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, width, height);
  return { ctx, width, height, ratio };
}

function drawSparkline(canvas, values, direction) {
  const { ctx, width, height, ratio } = clearCanvas(canvas);
  const peak = Math.max(1000, ...values);
  const step = width / (HISTORY_SECONDS - 1);
  const x = (i) => width - (values.length - 1 - i) * step;
  const y = (v) => height - 2 * ratio - (v / peak) * (height - 6 * ratio);
  const color = direction === 'upstream' ? '#3b6fd8' : '#1f9d74';
  ctx.strokeStyle = '#e4e8ef';
  ctx.lineWidth = ratio;
  ctx.beginPath();
  ctx.moveTo(0, height - ratio);
  ctx.lineTo(width, height - ratio);
  ctx.stroke();
  if (values.length < 2) return;
  ctx.beginPath();
  ctx.moveTo(x(0), height);
  values.forEach((v, i) => ctx.lineTo(x(i), y(v)));
  ctx.lineTo(width, height);
  ctx.closePath();
  ctx.fillStyle = color + '2e';
  ctx.fill();
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5 * ratio;
  ctx.stroke();
  ctx.fillStyle = '#6b7385';
  ctx.font = `${10 * ratio}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  ctx.fillText('peak ' + formatBytes(peak) + '/s', 4 * ratio, 2 * ratio);
}

// ---- events --------------------------------------------------------------------------

function setStatus(kind, detail) {
  const status = $('status');
  status.dataset.state = kind;
  status.textContent = {
    live: 'live', connecting: 'connecting…', error: 'error', token: 'token required',
  }[kind] || kind;
  status.title = detail || '';
}

// Follows /events with fetch (EventSource cannot send the headers the API requires).
async function followEvents() {
  for (;;) {
    try {
      const response = await fetch('/events', {
        cache: 'no-store', headers: requestHeaders({ Accept: 'text/event-stream' }),
      });
      if (response.status === 401) askToken('The server requires an API token.');
      if (!response.ok) throw new ApiError(`/events: ${response.status}`, response.status);
      state.streaming = true;
      setStatus('live');
      refreshProxies();
      // Subscribed first, then the history: what the runs reported before now is in it, and
      // what they report from now on arrives here, held back until the history is shown.
      const replay = { pending: [] };
      state.replay = replay;
      replayExperiments(replay);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart()).join('\n');
          if (!data) continue;
          const event = JSON.parse(data);
          if (state.replay && (event.type || '').startsWith('experiment_')) {
            state.replay.pending.push(event);
          } else {
            onEvent(event);
          }
        }
      }
      setStatus('connecting', 'the event stream ended');
    } catch (error) {
      if (error.status === 401) showFailure(error);
      else setStatus('connecting', error.message);
    }
    state.streaming = false;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// The recent runs' events from GET /experiments/events, then the live ones held back while it
// loaded, in sequence order, through the same handler as live events (which skips those seen).
async function replayExperiments(replay) {
  let history = [];
  try {
    history = await api('GET', '/experiments/events');
  } catch (error) {
    if (error.status !== 404) notify(error.message); // a server without it: live events only
  }
  if (state.replay === replay) state.replay = null;
  const events = (Array.isArray(history) ? history : []).concat(replay.pending);
  events.sort((a, b) => a.seq - b.seq);
  for (const event of events) onEvent(event);
}

// Whether this experiment event is new to the page. An event is known by its `seq` and its
// time together: a restarted server numbers from 1 again. The oldest are forgotten first.
function firstSight(event) {
  const key = `${event.seq}@${event.time}`;
  if (state.seen.has(key)) return false;
  state.seen.add(key);
  if (state.seen.size > SEEN_EVENTS_MAX) state.seen.delete(state.seen.values().next().value);
  return true;
}

const TIMELINE_KINDS = {
  proxy_created: 'info', proxy_updated: 'info', proxy_deleted: 'warn',
  toxic_added: 'toxic', toxic_updated: 'toxic', toxic_removed: 'info', toxic_expired: 'info',
  toxic_activated: 'toxic', toxic_deactivated: 'info', reset: 'warn',
  connection_refused: 'bad', upstream_error: 'bad', lagged: 'warn',
  experiment_started: 'info', experiment_ended: 'info',
};

function onEvent(event) {
  const type = event.type || '';
  if (type.startsWith('proxy_') || type.startsWith('toxic_') || type === 'reset' ||
      type === 'lagged') {
    scheduleRefresh();
  }
  if (type.startsWith('experiment_')) {
    if (!firstSight(event)) return;
    onExperimentEvent(event);
  }
  if (type === 'experiment_ended' && (event.detail || {}).verdict !== 'held') {
    addTimeline(event, 'bad');
    return;
  }
  // Ordinary connection ends are traffic, not news; cuts by a toxic are. Accepted API
  // requests (the audit's `api_request`) repeat the change events; refused ones are news.
  const cut = type === 'connection_closed' && event.detail && event.detail.how !== 'closed';
  const refused = type === 'api_request' && event.detail && event.detail.status >= 400;
  if (!(type in TIMELINE_KINDS) && !cut && !refused) return;
  addTimeline(event, cut || refused ? 'bad' : TIMELINE_KINDS[type]);
}

function describeEvent(event) {
  const d = event.detail || {};
  switch (event.type) {
    case 'proxy_created': return `${d.listen} → ${d.upstream}`;
    case 'proxy_updated': return d.enabled ? 'enabled' : 'disabled';
    case 'toxic_added':
    case 'toxic_updated': return `${d.type} ${d.stream}`;
    case 'connection_closed': return `${event.client} ${d.how === 'reset' ? 'reset' : 'cut'} by a toxic`;
    case 'connection_refused': return `${event.client} refused by ${d.by}`;
    case 'upstream_error': return d.error;
    case 'lagged': return `${event.missed} events missed`;
    case 'api_request': return `${d.method} ${d.path}: ${d.status} ${d.error || ''}`;
    case 'reset': return 'every proxy enabled, every toxic removed';
    case 'experiment_started': return d.title;
    case 'experiment_ended': return (VERDICTS[d.verdict] || [d.verdict])[0];
    default: return '';
  }
}

function addTimeline(event, tone) {
  const list = $('timeline');
  const time = (event.time || new Date().toISOString()).slice(11, 19);
  const subject = [event.proxy, event.toxic].filter(Boolean).join(' / ');
  list.prepend(el('li', { class: tone, dataset: { type: event.type } },
    el('time', { datetime: event.time }, time),
    el('span', { class: 'kind' },
      event.type === 'api_request' ? 'request refused' : event.type.replace(/_/g, ' ')),
    el('span', { class: 'subject' }, subject),
    el('span', { class: 'detail' }, describeEvent(event))));
  while (list.children.length > TIMELINE_MAX) list.lastChild.remove();
}

// ---- experiments ---------------------------------------------------------------------

// `faultline experiment run` posts its progress to /experiments/events, and the server passes
// it on here: the plan when a run starts, each step as it starts and ends, each probe value
// against its tolerance, and the verdict. A page opened (or reconnected) midway replays what
// the server kept of the recent runs first (replayExperiments), so it shows them from the start.

const PHASES = {
  safeguards: 'safeguard', before: 'steady state before', method: 'method',
  after: 'steady state after', rollbacks: 'rollback',
};
const VERDICTS = {
  held: ['hypothesis held', 'good'],
  deviated: ['hypothesis deviated', 'bad'],
  not_steady_before: ['not in steady state before the method', 'bad'],
  failed: ['failed: a hypothesis probe could not run', 'bad'],
  action_failed: ['error: a method action failed', 'bad'],
  aborted: ['aborted', 'warn'],
  interrupted: ['interrupted', 'warn'],
};

function onExperimentEvent(event) {
  const d = event.detail || {};
  if (!d.run) return;
  const started = event.type === 'experiment_started';
  let run = state.runs.get(d.run);
  if (!run || started) run = buildRun(d.run, started ? d : { title: 'experiment ' + d.run });
  if (event.type === 'experiment_activity') updateStep(run, d);
  else if (event.type === 'experiment_probe') addProbeValue(run, d);
  else if (event.type === 'experiment_ended') endRun(run, d);
}

function buildRun(id, started) {
  const previous = state.runs.get(id);
  if (previous) previous.root.remove();
  const run = { id, steps: new Map(), probes: new Map() };
  run.verdict = el('span', { class: 'badge verdict running', dataset: { verdict: 'running' } },
    'running');
  run.current = el('p', { class: 'current' }, 'starting…');
  run.stepList = el('ol', { class: 'steps' });
  run.probeList = el('div', { class: 'probes' });
  run.root = el('article', { class: 'experiment', dataset: { run: id, state: 'running' } },
    el('header', {}, el('h3', { class: 'title' }, started.title), run.verdict),
    run.current,
    el('div', { class: 'experiment-body' }, run.stepList, run.probeList));
  const seen = {};
  for (const step of started.steps || []) {
    seen[step.phase] = (seen[step.phase] ?? -1) + 1;
    addStep(run, step.phase, seen[step.phase], step.name, step.kind);
  }
  const section = $('experiments');
  section.hidden = false;
  section.querySelector('h2').after(run.root);
  state.runs.delete(id);
  state.runs.set(id, run);
  for (const [oldest, old] of state.runs) {
    if (state.runs.size <= RUNS_SHOWN) break;
    old.root.remove();
    state.runs.delete(oldest);
  }
  return run;
}

function addStep(run, phase, index, name, kind) {
  const step = {
    status: el('span', { class: 'step-status' }, 'pending'),
    detail: el('span', { class: 'step-detail' }),
  };
  step.li = el('li', { dataset: { phase, index: String(index), status: 'pending' } },
    el('span', { class: 'phase-tag' }, PHASES[phase] || phase),
    el('span', { class: 'step-name' }, name),
    el('span', { class: 'muted' }, kind),
    step.status, step.detail);
  run.stepList.append(step.li);
  run.steps.set(phase + ':' + index, step);
  return step;
}

function updateStep(run, d) {
  const step = run.steps.get(d.phase + ':' + d.index) ||
    addStep(run, d.phase, d.index, d.name, d.kind);
  step.li.dataset.status = d.status;
  step.status.textContent = d.status;
  step.detail.textContent = d.error || '';
  if (d.status === 'running') {
    run.current.textContent = `${PHASES[d.phase] || d.phase} · ${d.kind} ${d.name}`;
  }
}

function formatValue(value) {
  if (value === undefined || value === null) return '–';
  if (typeof value === 'number') return String(Math.round(value * 100) / 100);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 40 ? text.slice(0, 37) + '…' : text;
}

function addProbeValue(run, d) {
  let probe = run.probes.get(d.name);
  if (!probe) {
    probe = { values: [], range: null };
    probe.tolerance = el('span', { class: 'tolerance' });
    probe.canvas = el('canvas', {
      class: 'probe-chart', width: 240, height: 56,
      'aria-label': `${d.name}: values against the tolerance`,
    });
    probe.list = el('ol', { class: 'probe-values' });
    probe.root = el('div', { class: 'probe', dataset: { probe: d.name } },
      el('div', { class: 'probe-head' }, el('b', {}, d.name), probe.tolerance),
      probe.canvas, probe.list);
    run.probeList.append(probe.root);
    run.probes.set(d.name, probe);
  }
  if (d.range) probe.range = d.range;
  if (d.tolerance) probe.tolerance.textContent = 'tolerance: ' + d.tolerance;
  probe.values.push({ value: d.value, ok: d.ok });
  if (probe.values.length > HISTORY_SECONDS) probe.values.shift();
  probe.list.append(el('li', {
    class: d.ok ? 'ok' : 'bad', title: PHASES[d.phase] || d.phase,
    dataset: { ok: String(d.ok), phase: d.phase, value: JSON.stringify(d.value) },
  }, formatValue(d.value), d.ok ? ' ✓' : ' ✗'));
  while (probe.list.children.length > PROBE_VALUES_SHOWN) probe.list.firstChild.remove();
  drawProbeChart(probe);
}

// The numeric values in order, as dots (green within the tolerance, red outside) on a line,
// over the tolerance's range as a band.
function drawProbeChart(probe) {
  const { canvas } = probe;
  const points = probe.values.filter((p) => typeof p.value === 'number');
  canvas.hidden = points.length === 0;
  if (canvas.hidden) return;
  const { ctx, width, height, ratio } = clearCanvas(canvas);
  const values = points.map((p) => p.value);
  const bounds = probe.range ? probe.range.filter(Number.isFinite) : [];
  const low = Math.min(0, ...values, ...bounds);
  const high = Math.max(...values, ...bounds) * 1.1 || 1;
  const pad = 5 * ratio;
  const y = (v) => height - pad - ((v - low) / (high - low || 1)) * (height - 2 * pad);
  const step = points.length > 1 ? (width - 2 * pad) / (points.length - 1) : 0;
  const x = (i) => (points.length > 1 ? pad + i * step : width / 2);
  if (probe.range) {
    const top = y(Math.min(probe.range[1], high));
    ctx.fillStyle = '#1f9d7424';
    ctx.fillRect(0, top, width, y(Math.max(probe.range[0], low)) - top);
  }
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p.value)) : ctx.moveTo(x(i), y(p.value))));
  ctx.strokeStyle = '#9aa3b5';
  ctx.lineWidth = ratio;
  ctx.stroke();
  points.forEach((p, i) => {
    ctx.beginPath();
    ctx.arc(x(i), y(p.value), 3 * ratio, 0, 2 * Math.PI);
    ctx.fillStyle = p.ok ? '#1f9d74' : '#cf3f4f';
    ctx.fill();
  });
}

function drawAllProbeCharts() {
  for (const run of state.runs.values()) {
    for (const probe of run.probes.values()) drawProbeChart(probe);
  }
}

function endRun(run, d) {
  const [label, tone] = VERDICTS[d.verdict] || [d.verdict, 'warn'];
  run.root.dataset.state = d.verdict;
  run.verdict.className = 'badge verdict ' + tone;
  run.verdict.dataset.verdict = d.verdict;
  run.verdict.textContent = label;
  run.current.textContent = `Ended: ${d.status}${d.deviated ? ', deviated' : ''}` +
    (d.reason ? ` (${d.reason})` : '');
  for (const step of run.steps.values()) {
    if (step.li.dataset.status !== 'pending') continue;
    step.li.dataset.status = 'skipped';
    step.status.textContent = 'skipped';
  }
}

// ---- the toxic form, generated from /toxic-types ---------------------------------------

async function loadToxicTypes() {
  const types = await api('GET', '/toxic-types');
  state.types = new Map(types.map((t) => [t.name, t]));
  $('toxic-type').replaceChildren(...types.map((t) => el('option', { value: t.name }, t.name)));
}

function attributeInput(spec, value) {
  const id = 'attr-' + spec.name;
  let input;
  let range = '';
  if (spec.type === 'choice') {
    input = el('select', { id, name: spec.name },
      spec.choices.map((c) => el('option', { value: c, selected: c === value }, c)));
  } else if (spec.type === 'boolean') {
    input = el('select', { id, name: spec.name },
      ['false', 'true'].map((c) => el('option', { value: c, selected: String(value) === c }, c)));
  } else if (spec.type === 'string') {
    input = el('input', { id, name: spec.name, type: 'text', value: value ?? '' });
  } else if (spec.type === 'object' || spec.type === 'array') {
    // Header maps and name lists are edited as JSON, checked before sending.
    input = el('input', {
      id, name: spec.name, type: 'text', value: JSON.stringify(value ?? spec.default),
    });
    range = spec.type === 'object' ? 'JSON object' : 'JSON array';
  } else {
    input = el('input', {
      id, name: spec.name, type: 'number', required: true, min: spec.min, max: spec.max,
      step: spec.type === 'integer' ? 1 : 'any', value,
    });
    const unit = spec.unit ? spec.unit + ', ' : '';
    range = spec.max >= 1e12 ? `${unit}≥ ${spec.min}` : `${unit}${spec.min} – ${spec.max}`;
  }
  return el('label', { for: id },
    spec.name, spec.extension ? el('span', { class: 'hint' }, ' extension') : null,
    range ? el('span', { class: 'range' }, range) : null, input);
}

function renderAttributeInputs(type, values) {
  const spec = state.types.get(type) || { attributes: [] };
  const inputs = spec.attributes.map((a) =>
    attributeInput(a, values && values[a.name] !== undefined ? values[a.name] : a.default));
  $('toxic-attributes').replaceChildren(
    ...(inputs.length ? inputs : [el('p', { class: 'muted' }, 'This toxic has no attributes.')]));
}

function openToxicForm(proxyName, toxic) {
  const form = $('toxic-form');
  form.reset();
  state.editing = { proxy: proxyName, toxic: toxic && toxic.name };
  $('toxic-title').textContent = toxic ? `Edit ${toxic.name} on ${proxyName}` : `Add toxic to ${proxyName}`;
  $('toxic-submit').textContent = toxic ? 'Update toxic' : 'Add toxic';
  $('toxic-error').hidden = true;
  for (const name of ['type', 'name', 'stream']) form.elements[name].disabled = Boolean(toxic);
  if (toxic) {
    form.elements.type.value = toxic.type;
    form.elements.name.value = toxic.name;
    form.elements.stream.value = toxic.stream.toLowerCase();
    form.elements.toxicity.value = toxic.toxicity;
    if (toxic.schedule) {
      form.elements.on_ms.value = toxic.schedule.on_ms;
      form.elements.off_ms.value = toxic.schedule.off_ms;
    }
    if (toxic.target) {
      form.elements.cidrs.value = (toxic.target.cidrs || []).join(', ');
      if (toxic.target.fraction !== undefined) form.elements.fraction.value = toxic.target.fraction;
    }
  }
  renderAttributeInputs(form.elements.type.value, toxic && toxic.attributes);
  $('toxic-dialog').showModal();
}

/** The JSON value of one attribute input, by the attribute's kind. */
function attributeValue(spec, raw) {
  switch (spec.type) {
    case 'choice':
    case 'string':
      return raw;
    case 'boolean':
      return raw === 'true';
    case 'object':
    case 'array': {
      let parsed;
      try {
        parsed = JSON.parse(raw || JSON.stringify(spec.default));
      } catch (e) {
        throw new Error(`${spec.name}: not valid JSON (${e.message})`);
      }
      const isArray = Array.isArray(parsed);
      if ((spec.type === 'array') !== isArray || parsed === null || typeof parsed !== 'object') {
        throw new Error(`${spec.name}: expected a JSON ${spec.type}`);
      }
      return parsed;
    }
    default:
      return Number(raw);
  }
}

function readToxicForm() {
  const form = $('toxic-form');
  const f = form.elements;
  const type = f.type.value;
  const body = { toxicity: Number(f.toxicity.value), attributes: {} };
  for (const spec of (state.types.get(type) || { attributes: [] }).attributes) {
    const raw = f[spec.name].value;
    body.attributes[spec.name] = attributeValue(spec, raw);
  }
  if (f.duration_ms.value) body.duration_ms = Number(f.duration_ms.value);
  if (f.on_ms.value || f.off_ms.value) {
    body.schedule = { on_ms: Number(f.on_ms.value), off_ms: Number(f.off_ms.value) };
  }
  const cidrs = f.cidrs.value.split(',').map((c) => c.trim()).filter(Boolean);
  if (cidrs.length || f.fraction.value) {
    body.target = {};
    if (cidrs.length) body.target.cidrs = cidrs;
    if (f.fraction.value) body.target.fraction = Number(f.fraction.value);
  }
  if (!state.editing.toxic) {
    body.type = type;
    body.stream = f.stream.value;
    if (f.name.value.trim()) body.name = f.name.value.trim();
  }
  return body;
}

async function submitToxicForm(event) {
  event.preventDefault();
  const form = $('toxic-form');
  const error = $('toxic-error');
  // The browser checks the bounds from /toxic-types first; the server checks them again.
  if (!form.checkValidity()) {
    // Not querySelector(':invalid'): a fieldset around an invalid input matches it too.
    const invalid = [...form.elements].find((e) => e.willValidate && !e.validity.valid);
    error.textContent = `${invalid.name}: ${invalid.validationMessage}`;
    error.hidden = false;
    invalid.focus();
    return;
  }
  const { proxy, toxic } = state.editing;
  try {
    if (toxic) await api('POST', toxicPath(proxy, toxic), readToxicForm());
    else await api('POST', proxyPath(proxy) + '/toxics', readToxicForm());
    $('toxic-dialog').close();
    await refreshProxies();
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
}

// ---- token ---------------------------------------------------------------------------

// Asks once per page load when the server wants a token (a refused request in a retry loop
// must not reopen the dialog every second), and whenever the user clicks "API token".
function askToken(reason) {
  const dialog = $('token-dialog');
  if (dialog.open || (reason && askToken.asked)) return;
  if (reason) askToken.asked = true;
  if (reason) $('token-reason').textContent = reason +
    ' It is kept in this tab only (sessionStorage) and sent as Authorization: Bearer.';
  $('token-form').elements.token.value = sessionStorage.getItem(TOKEN_KEY) || '';
  dialog.showModal();
}

function saveToken(event) {
  event.preventDefault();
  const token = $('token-form').elements.token.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  $('token-dialog').close();
  // The event stream may have stopped on a 401; a reload starts everything with the token.
  location.reload();
}

// ---- start ---------------------------------------------------------------------------

function start() {
  $('reset-button').addEventListener('click', () => act(() => api('POST', '/reset')));
  $('token-button').addEventListener('click', () => askToken(''));
  $('token-form').addEventListener('submit', saveToken);
  $('token-cancel').addEventListener('click', () => $('token-dialog').close());
  $('toxic-form').addEventListener('submit', submitToxicForm);
  $('toxic-cancel').addEventListener('click', () => $('toxic-dialog').close());
  $('toxic-type').addEventListener('change', (e) => renderAttributeInputs(e.target.value, null));
  window.addEventListener('resize', () => {
    drawAllSparklines();
    drawAllProbeCharts();
  });

  loadToxicTypes().catch((error) => notify(error.message));
  followEvents();
  refreshProxies();
  pollStats();
  setInterval(pollStats, STATS_INTERVAL_MS);
  setInterval(refreshProxies, RESYNC_INTERVAL_MS);
  setInterval(updateCountdowns, 100);
}

start();
