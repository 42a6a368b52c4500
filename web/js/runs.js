// runs.js - the Runs page: a live table of runs with filters (state, kind,
// sweep, a search box and tags), sorting by any column, CSV export, and
// checkboxes to pick runs for the Compare view.

import {api, onConn} from './api.js';
import {h, fill, num, sci, dur, when, csv, saveBlob, stateBadge, STATES, KINDS, isNum, sleep} from './util.js';

const POLL_MS = 2000;

// The numbers of a run for the table (shared with the CSV export and the sweep page).
export function runRow(run, now = Date.now() / 1000) {
  const s = run.summary || {};
  const res = run.result || {};
  let active = s.active;
  let neurons = null;
  if (run.kind === 'compress' && Array.isArray(res.layers)) {
    active = res.layers.reduce((a, l) => a + (l.kept || 0), 0);
    neurons = res.layers.reduce((a, l) => a + (l.neurons || 0), 0);
  }
  const end = run.finished > 0 ? run.finished : (run.state === 'RUNNING' ? now : 0);
  return {
    id: run.id,
    name: run.name ?? run.spec?.name ?? '',
    tags: Array.isArray(run.tags) ? run.tags : [],
    kind: run.kind,
    state: run.state,
    sweep: run.sweep_id || '',
    lambda: isNum(s.lambda) ? s.lambda : res.lambda,
    mu: run.spec?.mu,
    active,
    neurons,
    rel_gap: isNum(s.rel_gap) ? s.rel_gap : res.rel_gap,
    duration: run.started > 0 && end > 0 ? end - run.started : null,
    stop_reason: run.stop_reason || '',
    created: run.created,
    waiting: run.state === 'QUEUED' ? `queue position ${run.queue_position}: ${run.waiting_reason || ''}` : '',
  };
}

// [key, header]; every column but the checkbox sorts.
const COLS = [
  ['pick', ''], ['id', 'run'], ['name', 'name'], ['kind', 'kind'], ['state', 'state'], ['tags', 'tags'],
  ['lambda', 'λ'], ['mu', 'μ'], ['active', 'active neurons'], ['rel_gap', 'rel_gap'], ['duration', 'duration'],
  ['stop_reason', 'stop_reason'], ['sweep', 'sweep'], ['created', 'created'],
];

// The tags typed in a filter box: "a, b c" -> ['a', 'b', 'c'].
export const tagList = (s) => String(s || '').split(/[\s,]+/).filter(Boolean);

// Whether a row matches the search text (id, name, kind or a tag, as q= on the server).
function matches(r, q) {
  if (!q) return true;
  const t = q.toLowerCase();
  return [r.id, r.name, r.kind, ...r.tags].some((v) => String(v || '').toLowerCase().includes(t));
}

// The value a column sorts by; null and '' sort last either way.
function sortValue(r, key) {
  if (key === 'tags') return r.tags.join(' ');
  if (key === 'active') return r.active;
  return r[key];
}

export function sortRows(rows, key, desc) {
  if (!key) return rows;
  const out = [...rows];
  out.sort((a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    const nx = x === null || x === undefined || x === '', ny = y === null || y === undefined || y === '';
    if (nx || ny) return nx && ny ? 0 : nx ? 1 : -1;
    const c = isNum(x) && isNum(y) ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
    return desc ? -c : c;
  });
  return out;
}

function tagChips(tags, onTag) {
  return tags.map((t) => h('button', {class: 'tag', 'data-tag': t, title: `show the runs tagged ${t}`, onclick: () => onTag(t)}, t));
}

export function mount(root, params) {
  const ctl = new AbortController();
  const FILTERS = ['state', 'kind', 'sweep', 'q', 'tag'];
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  let sortKey = COLS.some(([k]) => k === params.get('sort')) ? params.get('sort') : '';
  let desc = params.get('desc') === '1';
  let limit = Number(params.get('limit')) || 100;
  let rows = [];
  let shown = [];
  let more = false;
  const picked = new Set();

  const stateSel = h('select', {id: 'f-state', 'aria-label': 'state', onchange: () => setFilter('state', stateSel.value)},
    h('option', {value: ''}, 'all states'), STATES.map((s) => h('option', {value: s}, s)));
  const kindSel = h('select', {id: 'f-kind', 'aria-label': 'kind', onchange: () => setFilter('kind', kindSel.value)},
    h('option', {value: ''}, 'all kinds'), KINDS.map((k) => h('option', {value: k}, k)));
  const sweepList = h('datalist', {id: 'sweep-ids'});
  const sweepIn = h('input', {id: 'f-sweep', type: 'search', placeholder: 'sweep id (s-000001)', list: 'sweep-ids',
    'aria-label': 'sweep', onchange: () => setFilter('sweep', sweepIn.value.trim()),
    onsearch: () => setFilter('sweep', sweepIn.value.trim())});
  // The search box filters as one types (client side at once, then the server's q=).
  let qTimer = null;
  const qIn = h('input', {id: 'f-q', type: 'search', placeholder: 'search id, name, kind, tag', 'aria-label': 'search',
    oninput: () => { clearTimeout(qTimer); qTimer = setTimeout(() => setFilter('q', qIn.value.trim()), 250); f.q = qIn.value.trim(); render(); },
    onsearch: () => setFilter('q', qIn.value.trim())});
  const tagIn = h('input', {id: 'f-tag', type: 'search', placeholder: 'tags (all of)', 'aria-label': 'tags', size: 14,
    onchange: () => setFilter('tag', tagList(tagIn.value).join(',')), onsearch: () => setFilter('tag', tagList(tagIn.value).join(','))});
  stateSel.value = f.state;
  kindSel.value = f.kind;
  sweepIn.value = f.sweep;
  qIn.value = f.q;
  tagIn.value = f.tag;
  const count = h('span', {class: 'muted', id: 'runs-count'});
  const live = h('span', {class: 'live', id: 'runs-live'});
  const compareBtn = h('button', {id: 'compare-btn', disabled: true, title: 'overlay the picked runs\' curves and list the parameters that differ',
    onclick: () => { location.hash = '#/compare?ids=' + [...picked].map(encodeURIComponent).join(','); }}, 'Compare');
  const clearBtn = h('button', {id: 'pick-clear', class: 'secondary', hidden: true, onclick: () => { picked.clear(); render(); }}, 'Clear selection');
  const allBox = h('input', {type: 'checkbox', id: 'pick-all', 'aria-label': 'pick every run shown',
    onchange: () => { for (const r of shown) if (allBox.checked) picked.add(r.id); else picked.delete(r.id); render(); }});
  const ths = COLS.map(([k, t]) => (k === 'pick' ? h('th', {class: 'c-pick'}, allBox)
    : h('th', {class: 'c-' + k + ' sortable', 'data-key': k, title: 'sort by ' + (t || k), onclick: () => sortBy(k)}, t)));
  const tbody = h('tbody');
  const moreBtn = h('button', {class: 'secondary more', hidden: true, onclick: () => { limit = Math.min(1000, limit + 100); refresh(); }}, 'Show more');

  fill(root,
    h('div', {class: 'page-head'}, h('h1', {}, 'Runs'), live),
    h('div', {class: 'toolbar'},
      h('label', {}, 'Search ', qIn), h('label', {}, 'Tags ', tagIn),
      h('label', {}, 'State ', stateSel), h('label', {}, 'Kind ', kindSel), h('label', {}, 'Sweep ', sweepIn), sweepList,
      h('button', {id: 'export-csv', class: 'secondary', onclick: exportCsv, title: 'the rows shown, as CSV'}, 'Export CSV'),
      compareBtn, clearBtn, count),
    h('div', {class: 'table-wrap'},
      h('table', {class: 'grid', id: 'runs-table'}, h('thead', {}, h('tr', {}, ths)), tbody)),
    moreBtn);

  function syncUrl() {
    const q = new URLSearchParams(Object.entries(f).filter(([, x]) => x));
    if (sortKey) q.set('sort', sortKey);
    if (sortKey && desc) q.set('desc', '1');
    history.replaceState(null, '', '#/runs' + (q.toString() ? '?' + q : ''));
  }

  function setFilter(k, v) {
    f[k] = v;
    if (k === 'tag') tagIn.value = v;
    syncUrl();
    render();
    refresh();
  }

  function sortBy(k) {
    if (sortKey === k) desc = !desc;
    else { sortKey = k; desc = false; }
    syncUrl();
    render();
  }

  function exportCsv() {
    const head = ['id', 'kind', 'state', 'lambda', 'mu', 'active', 'neurons', 'rel_gap', 'duration_s', 'stop_reason', 'sweep', 'name', 'tags'];
    const body = shown.map((r) => [r.id, r.kind, r.state, r.lambda, r.mu, r.active, r.neurons, r.rel_gap,
      r.duration === null ? '' : r.duration.toFixed(3), r.stop_reason, r.sweep, r.name, r.tags.join(' ')]);
    saveBlob('vvd-runs.csv', new Blob([csv([head, ...body])], {type: 'text/csv'}));
  }

  let seq = 0;
  async function refresh() {
    const my = ++seq;
    const q = new URLSearchParams({page_size: String(limit)});
    for (const k of ['state', 'kind', 'sweep', 'q']) if (f[k]) q.set(k, f[k]);
    for (const t of tagList(f.tag)) q.append('tag', t);
    try {
      const r = await api('/v1/runs?' + q, {signal: ctl.signal});
      if (my !== seq) return;
      const now = Date.now() / 1000;
      rows = r.runs.map((x) => runRow(x, now));
      more = !!r.next_page_token;
      render();
      live.textContent = 'live';
      live.className = 'live on';
    } catch (e) {
      if (e.name === 'AbortError' || my !== seq) return;
      live.textContent = e.status === 401 ? 'token needed' : e.status === 0 ? 'offline' : 'error: ' + e.message;
      live.className = 'live off';
      if (e.status === 401) fill(tbody, h('tr', {}, h('td', {colspan: COLS.length, class: 'muted empty'}, 'The runs need the bearer token (see above).')));
      else if (e.status) fill(tbody, h('tr', {}, h('td', {colspan: COLS.length, class: 'error'}, e.message)));
    }
  }

  function cell(key, r) {
    switch (key) {
      case 'pick': return h('input', {type: 'checkbox', class: 'pick', 'aria-label': 'pick ' + r.id, checked: picked.has(r.id),
        onchange: (ev) => { if (ev.target.checked) picked.add(r.id); else picked.delete(r.id); render(); }});
      case 'id': return h('a', {href: '#/runs/' + r.id}, r.id);
      case 'state': {
        const b = stateBadge(r.state);
        if (r.waiting) b.title = r.waiting;
        return b;
      }
      case 'tags': return tagChips(r.tags, (t) => setFilter('tag', [...new Set([...tagList(f.tag), t])].join(',')));
      case 'sweep': return r.sweep ? h('a', {href: '#/sweeps/' + r.sweep}, r.sweep) : '';
      case 'lambda': case 'mu': return num(r[key]);
      case 'active': return r.neurons ? `${r.active} / ${r.neurons}` : num(r.active);
      case 'rel_gap': return sci(r.rel_gap);
      case 'duration': return dur(r.duration);
      case 'created': return h('span', {title: when(r.created)}, when(r.created).slice(5, 16));
      default: return r[key] ?? '';
    }
  }

  function render() {
    const tags = tagList(f.tag);
    shown = sortRows(rows.filter((r) => matches(r, f.q) && tags.every((t) => r.tags.includes(t))), sortKey, desc);
    const filtered = FILTERS.some((k) => f[k]);
    fill(tbody, shown.length ? shown.map((r) => h('tr', {'data-id': r.id, 'data-state': r.state, class: picked.has(r.id) ? 'picked' : null},
      COLS.map(([k]) => h('td', {class: 'c-' + k}, cell(k, r)))))
      : h('tr', {}, h('td', {colspan: COLS.length, class: 'muted empty'}, 'No runs' + (filtered ? ' match the filters.' : ' yet: POST /v1/runs or vvctl submit.'))));
    for (const th of ths) {
      const k = th.dataset.key;
      if (k) th.setAttribute('aria-sort', k === sortKey ? (desc ? 'descending' : 'ascending') : 'none');
    }
    document.getElementById('runs-table')?.setAttribute('data-sort', sortKey ? `${sortKey}:${desc ? 'desc' : 'asc'}` : '');
    allBox.checked = shown.length > 0 && shown.every((r) => picked.has(r.id));
    compareBtn.disabled = picked.size < 2;
    compareBtn.textContent = picked.size ? `Compare (${picked.size})` : 'Compare';
    clearBtn.hidden = !picked.size;
    count.textContent = `${shown.length} run${shown.length === 1 ? '' : 's'}${more ? ' (more on the server)' : ''}`;
    moreBtn.hidden = !more || limit >= 1000;
    const sweeps = [...new Set(rows.map((r) => r.sweep).filter(Boolean))];
    fill(sweepList, sweeps.map((s) => h('option', {value: s})));
  }

  (async () => {
    while (!ctl.signal.aborted) {
      await refresh();
      await sleep(POLL_MS, ctl.signal);
    }
  })();
  const off = onConn((c, what) => { if (what !== 'online' || c.online) refresh(); });

  return () => { ctl.abort(); off(); clearTimeout(qTimer); };
}
