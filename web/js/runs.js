// runs.js - the Runs page: a live table of runs with filters and CSV export.

import {api, onConn} from './api.js';
import {h, fill, num, sci, dur, csv, saveBlob, stateBadge, STATES, KINDS, isNum, sleep} from './util.js';

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
    waiting: run.state === 'QUEUED' ? `queue position ${run.queue_position}: ${run.waiting_reason || ''}` : '',
  };
}

const COLS = [
  ['id', 'run'], ['kind', 'kind'], ['state', 'state'], ['lambda', 'λ'], ['mu', 'μ'],
  ['active', 'active neurons'], ['rel_gap', 'rel_gap'], ['duration', 'duration'],
  ['stop_reason', 'stop_reason'], ['sweep', 'sweep'],
];

function cell(key, r) {
  switch (key) {
    case 'id': return h('a', {href: '#/runs/' + r.id}, r.id);
    case 'state': {
      const b = stateBadge(r.state);
      if (r.waiting) b.title = r.waiting;
      return b;
    }
    case 'sweep': return r.sweep ? h('a', {href: '#/sweeps/' + r.sweep}, r.sweep) : '';
    case 'lambda': case 'mu': return num(r[key]);
    case 'active': return r.neurons ? `${r.active} / ${r.neurons}` : num(r.active);
    case 'rel_gap': return sci(r.rel_gap);
    case 'duration': return dur(r.duration);
    default: return r[key] ?? '';
  }
}

export function mount(root, params) {
  const ctl = new AbortController();
  const f = {state: params.get('state') || '', kind: params.get('kind') || '', sweep: params.get('sweep') || ''};
  let limit = Number(params.get('limit')) || 100;
  let rows = [];
  let more = false;

  const stateSel = h('select', {id: 'f-state', 'aria-label': 'state', onchange: () => setFilter('state', stateSel.value)},
    h('option', {value: ''}, 'all states'), STATES.map((s) => h('option', {value: s}, s)));
  const kindSel = h('select', {id: 'f-kind', 'aria-label': 'kind', onchange: () => setFilter('kind', kindSel.value)},
    h('option', {value: ''}, 'all kinds'), KINDS.map((k) => h('option', {value: k}, k)));
  const sweepList = h('datalist', {id: 'sweep-ids'});
  const sweepIn = h('input', {id: 'f-sweep', type: 'search', placeholder: 'sweep id (s-000001)', list: 'sweep-ids',
    'aria-label': 'sweep', onchange: () => setFilter('sweep', sweepIn.value.trim()),
    onsearch: () => setFilter('sweep', sweepIn.value.trim())});
  stateSel.value = f.state;
  kindSel.value = f.kind;
  sweepIn.value = f.sweep;
  const count = h('span', {class: 'muted', id: 'runs-count'});
  const live = h('span', {class: 'live', id: 'runs-live'});
  const tbody = h('tbody');
  const moreBtn = h('button', {class: 'secondary', hidden: true, onclick: () => { limit = Math.min(1000, limit + 100); refresh(); }}, 'Show more');

  fill(root,
    h('div', {class: 'page-head'}, h('h1', {}, 'Runs'), live),
    h('div', {class: 'toolbar'},
      h('label', {}, 'State ', stateSel), h('label', {}, 'Kind ', kindSel), h('label', {}, 'Sweep ', sweepIn), sweepList,
      h('button', {id: 'export-csv', class: 'secondary', onclick: exportCsv, title: 'the rows shown, as CSV'}, 'Export CSV'),
      count),
    h('div', {class: 'table-wrap'},
      h('table', {class: 'grid', id: 'runs-table'},
        h('thead', {}, h('tr', {}, COLS.map(([k, t]) => h('th', {class: 'c-' + k}, t)))), tbody)),
    moreBtn);

  function setFilter(k, v) {
    f[k] = v;
    const q = new URLSearchParams(Object.entries(f).filter(([, x]) => x));
    history.replaceState(null, '', '#/runs' + (q.toString() ? '?' + q : ''));
    refresh();
  }

  function exportCsv() {
    const head = ['id', 'kind', 'state', 'lambda', 'mu', 'active', 'neurons', 'rel_gap', 'duration_s', 'stop_reason', 'sweep'];
    const body = rows.map((r) => [r.id, r.kind, r.state, r.lambda, r.mu, r.active, r.neurons, r.rel_gap,
      r.duration === null ? '' : r.duration.toFixed(3), r.stop_reason, r.sweep]);
    saveBlob('vvd-runs.csv', new Blob([csv([head, ...body])], {type: 'text/csv'}));
  }

  let seq = 0;
  async function refresh() {
    const my = ++seq;
    const q = new URLSearchParams({page_size: String(limit)});
    for (const k of ['state', 'kind', 'sweep']) if (f[k]) q.set(k, f[k]);
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

  function render() {
    fill(tbody, rows.length ? rows.map((r) => h('tr', {'data-id': r.id, 'data-state': r.state},
      COLS.map(([k]) => h('td', {class: 'c-' + k}, cell(k, r)))))
      : h('tr', {}, h('td', {colspan: COLS.length, class: 'muted empty'}, 'No runs' + (f.state || f.kind || f.sweep ? ' match the filters.' : ' yet: POST /v1/runs or vvctl submit.'))));
    count.textContent = `${rows.length} run${rows.length === 1 ? '' : 's'}${more ? ' (more on the server)' : ''}`;
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

  return () => { ctl.abort(); off(); };
}
