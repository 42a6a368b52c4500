// sweeps.js - the Sweeps page: every sweep (GET /v1/sweeps) newest first,
// with its kind, state, points, the states of their latest attempts and the
// grid's axes; filters by state, kind and a search text; "Load more" pages on.

import {api, onConn} from './api.js';
import {h, fill, when, show, stateBadge, sleep, STATES, KINDS} from './util.js';

const POLL_MS = 4000;
const SWEEP_STATES = ['ACTIVE', 'STOPPED', 'FINISHED'];

// "lambda_ratio ∈ [0.3, 0.1] × mu ∈ [1e-6]" from a grid object.
export function gridText(grid) {
  const e = Object.entries(grid || {});
  return e.length ? e.map(([k, v]) => `${k} ∈ ${show(v)}`).join(' × ') : '—';
}

function countsCell(c) {
  const parts = STATES.filter((s) => c?.[s]).map((s) => h('span', {class: 'badge state-' + s.toLowerCase(), 'data-count': s}, `${c[s]} ${s}`));
  return parts.length ? h('span', {class: 'counts'}, parts) : '—';
}

export function mount(root, params) {
  const ctl = new AbortController();
  // Sweeps per page (page_size= in the address, 50 by default).
  const PAGE = Math.min(1000, Math.max(1, Number(params.get('page_size')) || 50));
  const f = {state: params.get('state') || '', kind: params.get('kind') || '', q: params.get('q') || ''};
  let sweeps = [];
  let next = '';
  let want = PAGE; // how many the periodic refresh reads again (grows with Load more)

  const stateSel = h('select', {id: 'sf-state', 'aria-label': 'state', onchange: () => setFilter('state', stateSel.value)},
    h('option', {value: ''}, 'all states'), SWEEP_STATES.map((s) => h('option', {value: s}, s)));
  const kindSel = h('select', {id: 'sf-kind', 'aria-label': 'kind', onchange: () => setFilter('kind', kindSel.value)},
    h('option', {value: ''}, 'all kinds'), KINDS.map((k) => h('option', {value: k}, k)));
  const qIn = h('input', {id: 'sf-q', type: 'search', placeholder: 'id or name', 'aria-label': 'search',
    onchange: () => setFilter('q', qIn.value.trim()), onsearch: () => setFilter('q', qIn.value.trim())});
  stateSel.value = f.state;
  kindSel.value = f.kind;
  qIn.value = f.q;
  const live = h('span', {class: 'live', id: 'sweeps-live'});
  const count = h('span', {class: 'muted', id: 'sweeps-count'});
  const msg = h('div', {id: 'sweeps-msg'});
  const tbody = h('tbody');
  const cols = ['sweep', 'name', 'kind', 'state', 'points', 'latest attempts', 'grid', 'created'];
  const moreBtn = h('button', {id: 'sweeps-more', class: 'secondary more', hidden: true, onclick: loadMore}, 'Load more');

  fill(root,
    h('div', {class: 'page-head'}, h('h1', {}, 'Sweeps'), live),
    h('div', {class: 'toolbar'},
      h('label', {}, 'Search ', qIn), h('label', {}, 'State ', stateSel), h('label', {}, 'Kind ', kindSel), count),
    msg,
    h('div', {class: 'table-wrap'},
      h('table', {class: 'grid', id: 'sweeps-table'}, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))), tbody)),
    moreBtn);

  function setFilter(k, v) {
    f[k] = v;
    const q = new URLSearchParams(Object.entries(f).filter(([, x]) => x));
    if (params.get('page_size')) q.set('page_size', String(PAGE));
    history.replaceState(null, '', '#/sweeps' + (q.toString() ? '?' + q : ''));
    want = PAGE;
    refresh();
  }

  function query(size, token) {
    const q = new URLSearchParams({page_size: String(size)});
    for (const k of ['state', 'kind', 'q']) if (f[k]) q.set(k, f[k]);
    if (token) q.set('page_token', token);
    return '/v1/sweeps?' + q;
  }

  let seq = 0;
  async function refresh() {
    const my = ++seq;
    try {
      const r = await api(query(Math.min(1000, want), ''), {signal: ctl.signal});
      if (my !== seq) return;
      sweeps = r.sweeps || [];
      next = r.next_page_token || '';
      fill(msg);
      render();
      live.textContent = 'live';
      live.className = 'live on';
    } catch (e) {
      if (e.name === 'AbortError' || my !== seq) return;
      live.textContent = e.status === 401 ? 'token needed' : e.status === 0 ? 'offline' : 'error';
      live.className = 'live off';
      if (e.status && e.status !== 401) fill(msg, h('div', {class: 'banner error', role: 'alert'}, `Sweeps: ${e.message}`));
    }
  }

  async function loadMore() {
    if (!next) return;
    const my = ++seq;
    moreBtn.disabled = true;
    try {
      const r = await api(query(PAGE, next), {signal: ctl.signal});
      if (my !== seq) return;
      const have = new Set(sweeps.map((s) => s.id));
      sweeps = sweeps.concat((r.sweeps || []).filter((s) => !have.has(s.id)));
      next = r.next_page_token || '';
      want = Math.max(PAGE, sweeps.length);
      render();
    } catch (e) {
      if (e.name !== 'AbortError') fill(msg, h('div', {class: 'banner error', role: 'alert'}, `Load more: ${e.message}`));
    } finally {
      moreBtn.disabled = false;
    }
  }

  function render() {
    const filtered = f.state || f.kind || f.q;
    fill(tbody, sweeps.length ? sweeps.map((s) => h('tr', {'data-id': s.id, 'data-state': s.state},
      h('td', {}, h('a', {href: '#/sweeps/' + encodeURIComponent(s.id)}, s.id)),
      h('td', {}, s.name || h('span', {class: 'muted'}, '—')),
      h('td', {}, s.kind || '—'),
      h('td', {}, stateBadge(s.state)),
      h('td', {class: 'c-points'}, String(s.points ?? '—'), s.deleted ? h('span', {class: 'muted', title: 'runs deleted from this sweep'}, ` (${s.deleted} deleted)`) : null),
      h('td', {}, countsCell(s.counts)),
      h('td', {}, h('code', {}, gridText(s.grid))),
      h('td', {}, when(s.created))))
      : h('tr', {}, h('td', {colspan: cols.length, class: 'muted empty'},
        filtered ? 'No sweeps match the filters.' : 'No sweeps yet: POST /v1/sweeps or vvctl sweep.')));
    count.textContent = `${sweeps.length} sweep${sweeps.length === 1 ? '' : 's'}${next ? ' (more on the server)' : ''}`;
    moreBtn.hidden = !next;
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
