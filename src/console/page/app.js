// The Tidings console page. Plain JavaScript, no build step. Everything shown comes from the
// console's own API and much of it from messages (untrusted): it is only ever put in the page as
// text (textContent, createTextNode), never as HTML.

const token = document.querySelector('meta[name="tidings-console-token"]')?.content ?? '';
const TAIL_ROWS = 500;

const state = {
  overview: undefined,
  stats: undefined,
  dlq: undefined, // the queue whose dead letters are shown
  letters: [],
  selected: new Set(),
  dlqTotals: new Map(),
  tail: undefined, // { source, wanted, paused, held }
  tailRows: [],
};

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

async function api(path, init = {}) {
  const headers = { 'x-tidings-console-token': token, ...init.headers };
  const response = await fetch(path, { ...init, headers });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text };
  }
  if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

function post(path, body) {
  return api(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const fmt = {
  count: (n) => (n === undefined || n === null ? '–' : String(n)),
  rate: (n) => (n === undefined || n === null ? '–' : n.toFixed(1)),
  signed: (n) => (n === undefined || n === null ? '–' : `${n > 0 ? '+' : ''}${n.toFixed(1)}`),
  time: (iso) => {
    if (!iso) return '–';
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  },
  clock: (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleTimeString();
  },
  short: (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text),
};

function problem(text) {
  const p = $('problem');
  p.hidden = !text;
  p.textContent = text ?? '';
}

// ---- topology and numbers

async function loadTopology() {
  const response = await fetch('/api/topology.svg', {
    headers: { 'x-tidings-console-token': token },
  });
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const doc = new DOMParser().parseFromString(await response.text(), 'image/svg+xml');
  const svg = document.importNode(doc.documentElement, true);
  for (const rect of svg.querySelectorAll('rect[data-queue]')) {
    const queue = rect.getAttribute('data-queue');
    rect.addEventListener('click', () => openDeadLetters(queue, true));
  }
  $('svg').replaceChildren(svg);
}

function renderQueueTable() {
  const rows = state.overview.model.queues.map((q) =>
    el(
      'tr',
      { 'data-queue': q.queue },
      el('td', { text: q.service }),
      el('td', { class: 'key' }, q.queue),
      el('td', { class: 'muted', text: q.reads.join(', ') }),
      ...['ready', 'unacked', 'consumers', 'in', 'out', 'net'].map((k) =>
        el('td', { class: 'num', 'data-k': k, text: '–' }),
      ),
      el(
        'td',
        { class: 'num', 'data-k': 'dead' },
        el('a', { href: '#dead-letters', onclick: () => openDeadLetters(q.queue, false) }, '–'),
      ),
    ),
  );
  $('queues').tBodies[0].replaceChildren(...rows);
}

function renderChips() {
  const chips = state.overview.model.queues.map((q) =>
    el(
      'button',
      {
        type: 'button',
        role: 'tab',
        'data-queue': q.queue,
        'aria-selected': String(state.dlq === q.queue),
        onclick: () => openDeadLetters(q.queue, false),
      },
      q.queue,
      el('span', { class: 'count', text: '–' }),
    ),
  );
  $('dlq-queues').replaceChildren(...chips);
}

async function refreshStats() {
  try {
    const stats = await api('/api/stats');
    state.stats = stats;
    problem(undefined);
    renderStats(stats);
  } catch (error) {
    problem(`Could not read the numbers: ${error.message}`);
  }
}

function renderStats(stats) {
  const source = {
    management: 'numbers: RabbitMQ management API',
    passive: 'numbers: passive declares',
    none: 'numbers: unavailable',
  }[stats.source];
  $('source').textContent = source ?? stats.source;
  $('source').title = stats.note ?? '';
  $('updated').textContent =
    `updated ${fmt.clock(stats.at)}${stats.note ? ` · ${stats.note}` : ''}`;
  const svg = $('svg');
  for (const q of state.overview.model.queues) {
    const s = stats.queues[q.queue];
    const dead = stats.queues[q.dlq]?.messages;
    const parts = s
      ? [
          `${s.messages} ready`,
          s.unacknowledged === undefined ? undefined : `${s.unacknowledged} unacked`,
          `${s.consumers} consumer${s.consumers === 1 ? '' : 's'}`,
          s.inRate === undefined ? undefined : `${fmt.rate(s.inRate)}/s in`,
          s.inRate === undefined && s.netRate !== undefined
            ? `${fmt.signed(s.netRate)}/s`
            : undefined,
        ].filter(Boolean)
      : ['not on the broker'];
    const label = svg.querySelector(`text[data-stats-queue="${CSS.escape(q.queue)}"]`);
    if (label) {
      label.textContent = parts.join(' · ');
      if (dead) {
        const tspan = document.createElementNS('http://www.w3.org/2000/svg', 'tspan');
        tspan.setAttribute('class', 'dead');
        tspan.textContent = ` · ${dead} dead`;
        label.append(tspan);
      }
    }
    svg
      .querySelector(`rect[data-queue="${CSS.escape(q.queue)}"]`)
      ?.classList.toggle('has-dead', Boolean(dead));
    const row = $('queues').querySelector(`tr[data-queue="${CSS.escape(q.queue)}"]`);
    if (row) {
      const set = (k, text) => {
        row.querySelector(`[data-k="${k}"]`).textContent = text;
      };
      set('ready', fmt.count(s?.messages));
      set('unacked', fmt.count(s?.unacknowledged));
      set('consumers', fmt.count(s?.consumers));
      set('in', fmt.rate(s?.inRate));
      set('out', fmt.rate(s?.outRate));
      set('net', fmt.signed(s?.netRate));
      const cell = row.querySelector('[data-k="dead"]');
      cell.firstChild.textContent = fmt.count(dead);
      cell.classList.toggle('dead', Boolean(dead));
    }
    const chip = $('dlq-queues').querySelector(`button[data-queue="${CSS.escape(q.queue)}"]`);
    if (chip) {
      chip.querySelector('.count').textContent = fmt.count(dead);
      chip.classList.toggle('has-dead', Boolean(dead));
    }
    // The open list follows its queue: reread it when the count changes.
    const before = state.dlqTotals.get(q.queue);
    state.dlqTotals.set(q.queue, dead);
    if (state.dlq === q.queue && before !== undefined && before !== dead) void loadDeadLetters();
  }
  for (const name of state.overview.model.exchanges) {
    const label = svg.querySelector(`text[data-stats-exchange="${CSS.escape(name)}"]`);
    const rate = stats.exchanges[name]?.inRate;
    if (label) label.textContent = rate === undefined ? '' : `${fmt.rate(rate)} msg/s in`;
  }
  const other = stats.otherQueues ?? [];
  $('other').hidden = other.length === 0;
  $('other-list').replaceChildren(
    ...other.map((o) =>
      el(
        'li',
        {},
        el('code', { text: o.queue }),
        ` bound to ${o.exchange} by `,
        el('code', { text: o.pattern }),
      ),
    ),
  );
}

// ---- dead letters

function openDeadLetters(queue, scroll) {
  state.dlq = queue;
  state.selected.clear();
  for (const chip of $('dlq-queues').children) {
    chip.setAttribute('aria-selected', String(chip.getAttribute('data-queue') === queue));
  }
  $('dlq-panel').hidden = false;
  $('dlq-name').textContent = `${queue}.dlq`;
  $('dlq-detail').hidden = true;
  status('');
  if (scroll) $('dead-letters').scrollIntoView({ behavior: 'smooth' });
  void loadDeadLetters();
}

let loading;
async function loadDeadLetters() {
  const queue = state.dlq;
  if (!queue) return;
  // One list at a time; a change meanwhile asks for another after it.
  if (loading) {
    loading.again = true;
    return;
  }
  loading = { again: false };
  try {
    const list = await api(`/api/dead-letters?queue=${encodeURIComponent(queue)}`);
    if (state.dlq !== queue) return;
    state.letters = list.letters;
    const ids = new Set(list.letters.map((d) => d.id));
    for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
    $('dlq-count').textContent = list.missing
      ? 'no dead-letter queue on the broker yet'
      : list.total > list.letters.length
        ? `showing ${list.letters.length} of ${list.total}`
        : `${list.total} message${list.total === 1 ? '' : 's'}`;
    renderLetters();
  } catch (error) {
    status(`Could not list the dead letters: ${error.message}`, 'error');
  } finally {
    const again = loading.again;
    loading = undefined;
    if (again) void loadDeadLetters();
  }
}

function renderLetters() {
  const rows = state.letters.map((d, i) => {
    const box = el('input', {
      type: 'checkbox',
      'aria-label': `select ${d.id ?? 'this message'}`,
      disabled: d.id === null,
      onclick: (event) => {
        event.stopPropagation();
        if (event.target.checked) state.selected.add(d.id);
        else state.selected.delete(d.id);
        updateButtons();
      },
    });
    box.checked = d.id !== null && state.selected.has(d.id);
    return el(
      'tr',
      { 'data-id': d.id ?? '', onclick: () => showLetter(i) },
      el('td', {}, box),
      el('td', { class: 'id', text: d.id ?? '(no id)' }),
      el('td', { class: 'key', text: d.type }),
      el('td', { text: d.reason }),
      el('td', { class: 'num', text: String(d.attempts) }),
      el('td', { text: fmt.time(d.firstFailedAt) }),
      el('td', { text: fmt.time(d.deadLetteredAt) }),
      el('td', { class: 'error', text: fmt.short(d.error, 160) }),
      el('td', { class: 'body', text: fmt.short(d.body.text.replace(/\s+/g, ' '), 200) }),
    );
  });
  const body = $('dlq-table').tBodies[0];
  if (rows.length === 0) {
    body.replaceChildren(
      el('tr', {}, el('td', { colspan: 9, class: 'muted', text: 'No dead letters.' })),
    );
  } else body.replaceChildren(...rows);
  updateButtons();
}

function showLetter(i) {
  const d = state.letters[i];
  if (!d) return;
  for (const row of $('dlq-table').tBodies[0].rows) row.classList.remove('chosen');
  $('dlq-table').tBodies[0].rows[i]?.classList.add('chosen');
  const detail = $('dlq-detail');
  detail.hidden = false;
  detail.replaceChildren(
    el('h3', { text: `Dead letter ${d.id ?? '(no id)'}` }),
    keyValues([
      ['event', d.type],
      ['reason', d.reason],
      ['error', d.error],
      ['attempts', String(d.attempts)],
      ['first failure', fmt.time(d.firstFailedAt)],
      ['last failure', fmt.time(d.deadLetteredAt)],
      ['failed in', d.service ?? '–'],
    ]),
    bodyBlock(d.body),
    el('h3', { text: 'Headers' }),
    keyValues(
      Object.entries(d.headers).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
    ),
  );
}

function keyValues(pairs) {
  return el(
    'table',
    {},
    el(
      'tbody',
      {},
      ...pairs.map(([k, v]) =>
        el('tr', {}, el('td', { text: k }), el('td', { class: 'mono', text: v ?? '–' })),
      ),
    ),
  );
}

function bodyBlock(body) {
  const note = `${body.kind}, ${body.bytes} byte${body.bytes === 1 ? '' : 's'}${body.truncated ? ', preview cut' : ''}`;
  return el(
    'div',
    {},
    el('h3', {}, 'Body ', el('span', { class: 'muted', text: `(${note})` })),
    el('pre', { text: body.text }),
  );
}

function updateButtons() {
  const writes = state.overview?.allowWrites === true;
  const withIds = state.letters.filter((d) => d.id !== null).length;
  const all = $('dlq-select-all');
  all.checked = withIds > 0 && state.selected.size === withIds;
  $('dlq-replay-selected').disabled = !writes || state.selected.size === 0;
  $('dlq-purge-selected').disabled = !writes || state.selected.size === 0;
  $('dlq-replay-all').disabled = !writes || state.letters.length === 0;
  $('dlq-purge-all').disabled = !writes || state.letters.length === 0;
}

function status(text, kind) {
  const s = $('dlq-status');
  s.textContent = text;
  s.className = `status${kind ? ` ${kind}` : ''}`;
}

function confirmDialog(text, ok) {
  return new Promise((resolve) => {
    const dialog = $('confirm');
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = ok;
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

async function replay(all) {
  const queue = state.dlq;
  const ids = all ? undefined : [...state.selected];
  status(all ? 'Replaying every message…' : `Replaying ${ids.length}…`);
  try {
    const result = await post(
      '/api/dead-letters/replay',
      all ? { queue, all: true } : { queue, ids },
    );
    const problems = [
      ...result.failed.map((f) => f.error),
      ...result.notFound.map((id) => `not found: ${id}`),
    ];
    const done = `Replayed ${result.replayed.length} message${result.replayed.length === 1 ? '' : 's'} to ${result.queue}.`;
    status(
      problems.length ? `${done} ${problems.join('; ')}` : done,
      problems.length ? 'error' : 'done',
    );
    state.selected.clear();
  } catch (error) {
    status(`Replay refused: ${error.message}`, 'error');
  }
  await loadDeadLetters();
  void refreshStats();
}

async function purge(all) {
  const queue = state.dlq;
  const ids = all ? undefined : [...state.selected];
  const count = all
    ? $('dlq-count').textContent || `${state.letters.length}`
    : `${ids.length} message${ids.length === 1 ? '' : 's'}`;
  const ok = await confirmDialog(
    `Delete ${all ? `every message (${count})` : count} from ${queue}.dlq? This cannot be undone.`,
    all ? 'Delete all' : 'Delete',
  );
  if (!ok) {
    status('Not purged.');
    return;
  }
  try {
    const result = await post(
      '/api/dead-letters/purge',
      all ? { queue, all: true, confirm: true } : { queue, ids, confirm: true },
    );
    status(`Purged ${result.purged} message${result.purged === 1 ? '' : 's'}.`, 'done');
    state.selected.clear();
  } catch (error) {
    status(`Purge refused: ${error.message}`, 'error');
  }
  await loadDeadLetters();
  void refreshStats();
}

// ---- live tail

function fillTailSelects() {
  const model = state.overview.model;
  const exchange = $('tail-exchange');
  exchange.replaceChildren(...model.exchanges.map((x) => el('option', { value: x, text: x })));
  const fillEvents = () => {
    const events = model.events.filter((e) => e.exchange === exchange.value);
    $('tail-event').replaceChildren(
      el('option', { value: '', text: 'any' }),
      ...events.map((e) => el('option', { value: e.event, text: e.event })),
    );
    fillVersions();
  };
  const fillVersions = () => {
    const e = model.events.find(
      (x) => x.exchange === exchange.value && x.event === $('tail-event').value,
    );
    $('tail-version').replaceChildren(
      el('option', { value: '', text: 'any' }),
      ...(e?.versions ?? []).map((v) => el('option', { value: String(v), text: `v${v}` })),
    );
  };
  exchange.addEventListener('change', fillEvents);
  $('tail-event').addEventListener('change', fillVersions);
  fillEvents();
  if (!state.overview.tail) {
    $('tail-start').disabled = true;
    $('tail-status').textContent =
      `The ${state.overview.transport} transport cannot tap an exchange.`;
  }
}

function startTail() {
  stopTail();
  const params = new URLSearchParams({ exchange: $('tail-exchange').value });
  params.set('token', token);
  if ($('tail-event').value) params.set('event', $('tail-event').value);
  if ($('tail-version').value) params.set('version', $('tail-version').value);
  const tail = { wanted: true, paused: false, held: 0, params };
  state.tail = tail;
  open(tail);
  $('tail-start').disabled = true;
  $('tail-stop').disabled = false;
  $('tail-pause').disabled = false;
  $('tail-pause').textContent = 'Pause';
}

function open(tail) {
  const source = new EventSource(`/api/tail?${tail.params}`);
  tail.source = source;
  $('tail-status').textContent = 'connecting…';
  source.addEventListener('ready', () => {
    const f = [...tail.params.entries()]
      .filter(([k]) => k !== 'token')
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    $('tail-status').textContent = `tailing ${f}`;
  });
  source.addEventListener('messages', (event) => {
    const batch = JSON.parse(event.data);
    if (batch.dropped) $('tail-status').textContent = `${batch.dropped} dropped (too fast to show)`;
    if (tail.paused) {
      tail.held += batch.messages.length;
      $('tail-pause').textContent = `Resume (${tail.held} skipped)`;
      return;
    }
    addTailRows(batch.messages);
  });
  source.addEventListener('end', (event) => {
    source.close();
    let reason = 'the stream ended';
    try {
      reason = JSON.parse(event.data).reason;
    } catch {}
    $('tail-status').textContent = `stopped: ${reason}; trying again in 5 s`;
    setTimeout(() => {
      if (state.tail === tail && tail.wanted) open(tail);
    }, 5000);
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED && state.tail === tail) {
      $('tail-status').textContent = 'the console refused the tail (too many open?)';
    }
  };
}

function stopTail() {
  const tail = state.tail;
  if (!tail) return;
  tail.wanted = false;
  tail.source?.close();
  state.tail = undefined;
  $('tail-start').disabled = !state.overview?.tail;
  $('tail-stop').disabled = true;
  $('tail-pause').disabled = true;
  $('tail-status').textContent = 'stopped';
}

function addTailRows(messages) {
  const body = $('tail-table').tBodies[0];
  const fragment = document.createDocumentFragment();
  // Newest first; only the last TAIL_ROWS are kept, in the page and in memory.
  for (const m of messages.slice(-TAIL_ROWS).reverse()) {
    state.tailRows.unshift(m);
    fragment.append(
      el(
        'tr',
        { onclick: () => showTail(m) },
        el('td', { class: 'num', text: String(m.seq) }),
        el('td', { text: fmt.clock(m.receivedAt) }),
        el('td', { class: 'key', text: m.routingKey }),
        el('td', { class: 'id', text: m.envelope?.id ?? '–' }),
        el('td', { text: m.envelope?.source ?? '–' }),
        el('td', { class: 'body', text: fmt.short(m.body.text.replace(/\s+/g, ' '), 200) }),
      ),
    );
  }
  body.prepend(fragment);
  while (body.rows.length > TAIL_ROWS) body.deleteRow(-1);
  state.tailRows.length = Math.min(state.tailRows.length, TAIL_ROWS);
}

function showTail(m) {
  const detail = $('tail-detail');
  detail.hidden = false;
  const envelope = Object.entries(m.envelope ?? {}).filter(
    ([, v]) => v !== undefined && v !== null,
  );
  detail.replaceChildren(
    el('h3', { text: `Message #${m.seq}: ${m.routingKey}` }),
    keyValues([
      ['exchange', m.exchange],
      ['routing key', m.routingKey],
      ['event', m.event ?? '–'],
      ['version', m.version === undefined ? '–' : `v${m.version}`],
      ['received', fmt.time(m.receivedAt)],
      ['redelivered', String(m.redelivered)],
      ['content type', m.contentType ?? '–'],
      ...envelope.map(([k, v]) => [`envelope ${k}`, String(v)]),
    ]),
    bodyBlock(m.body),
    el('h3', { text: 'Headers' }),
    keyValues(
      Object.entries(m.headers).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
    ),
  );
}

// ---- start

async function main() {
  let overview;
  try {
    overview = await api('/api/overview');
  } catch (error) {
    problem(`The console does not answer: ${error.message}`);
    return;
  }
  state.overview = overview;
  document.title = overview.title;
  $('title').textContent = overview.title;
  $('broker').textContent = `${overview.broker} (${overview.transport})`;
  const mode = $('mode');
  mode.textContent = overview.allowWrites ? 'writes allowed' : 'read-only';
  mode.classList.add(overview.allowWrites ? 'write' : 'read');
  $('dlq-readonly').hidden = overview.allowWrites;
  for (const b of document.querySelectorAll('[data-write]')) {
    if (!overview.allowWrites) b.title = 'read-only: start the console with --allow-writes';
  }
  renderQueueTable();
  renderChips();
  fillTailSelects();
  $('dlq-refresh').addEventListener('click', () => void loadDeadLetters());
  $('dlq-replay-selected').addEventListener('click', () => void replay(false));
  $('dlq-replay-all').addEventListener('click', () => void replay(true));
  $('dlq-purge-selected').addEventListener('click', () => void purge(false));
  $('dlq-purge-all').addEventListener('click', () => void purge(true));
  $('dlq-select-all').addEventListener('click', (event) => {
    state.selected.clear();
    if (event.target.checked)
      for (const d of state.letters) if (d.id !== null) state.selected.add(d.id);
    renderLetters();
  });
  $('tail-start').addEventListener('click', startTail);
  $('tail-stop').addEventListener('click', stopTail);
  $('tail-pause').addEventListener('click', () => {
    const tail = state.tail;
    if (!tail) return;
    tail.paused = !tail.paused;
    tail.held = 0;
    $('tail-pause').textContent = tail.paused ? 'Resume' : 'Pause';
  });
  $('tail-clear').addEventListener('click', () => {
    $('tail-table').tBodies[0].replaceChildren();
    state.tailRows = [];
    $('tail-detail').hidden = true;
  });
  try {
    await loadTopology();
  } catch (error) {
    problem(`Could not draw the topology: ${error.message}`);
  }
  await refreshStats();
  setInterval(() => void refreshStats(), overview.statsIntervalMs);
  document.body.setAttribute('data-ready', 'true');
}

void main();
