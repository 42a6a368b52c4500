// sweep.js - the Sweep page: its points as a table and a Pareto plot (active
// neurons against a loss, or test accuracy when the runs report it); every
// point links to its run.

import {api, onConn} from './api.js';
import {loadUPlot, paretoChart} from './charts.js';
import {runRow} from './runs.js';
import {h, fill, num, sci, dur, when, show, stateBadge, isNum, sleep, STATES} from './util.js';

const POLL_MS = 2000;

// The y choices of the Pareto plot: [key, label, maximise, log scale, value of a run].
const Y = [
  ['test_acc', 'test accuracy', true, false, (r) => r.result?.after?.test_acc ?? r.result?.test_acc ?? r.summary?.test_acc],
  ['mse', 'mse', false, false, (r) => r.summary?.mse ?? r.result?.mse],
  ['objective', 'objective', false, false, (r) => r.summary?.objective ?? r.result?.objective],
  ['test_loss', 'test loss', false, false, (r) => r.result?.after?.test_loss ?? r.result?.test_loss],
];

export function mount(root, params, id) {
  const ctl = new AbortController();
  let sweep = null;
  let yKey = params.get('y') || '';
  let chart = null;
  let U = null;
  let lastSig = '';

  const title = h('h1', {}, id);
  const badge = h('span', {id: 'sweep-state'});
  const stopBtn = h('button', {class: 'danger', id: 'sweep-stop', hidden: true, onclick: () => act('stop')}, 'Stop sweep');
  const resumeBtn = h('button', {class: 'secondary', id: 'sweep-resume', hidden: true, onclick: () => act('resume'),
    title: 're-queue the points whose latest attempt failed, crashed or was stopped'}, 'Resume');
  const live = h('span', {class: 'live', id: 'sweep-live'});
  const meta = h('div', {class: 'meta', id: 'sweep-meta'});
  const msg = h('div', {id: 'sweep-msg'});
  const ySel = h('select', {id: 'pareto-y', 'aria-label': 'y axis', onchange: () => { yKey = ySel.value; lastSig = ''; render(); }});
  const plot = h('div', {class: 'chart wide', id: 'pareto'});
  const front = h('p', {class: 'muted', id: 'pareto-note'});
  const tableBox = h('div', {class: 'table-wrap', id: 'sweep-points'});

  fill(root,
    h('div', {class: 'page-head'}, h('a', {href: '#/runs', class: 'back'}, '← Runs'), title, badge, stopBtn, resumeBtn, live),
    meta, msg,
    h('section', {}, h('div', {class: 'section-head'}, h('h2', {}, 'Pareto plot'), h('label', {}, 'y ', ySel)), plot, front),
    h('section', {}, h('h2', {}, 'Points'), tableBox));

  async function act(what) {
    try {
      const r = await api(`/v1/sweeps/${id}/${what}`, {method: 'POST'});
      fill(msg, what === 'resume' ? h('div', {class: 'banner info'}, `Resume: ${(r.requeued || []).length} point(s) re-queued.`) : null);
      await refresh();
    } catch (e) {
      fill(msg, h('div', {class: 'banner error'}, `${what} failed: ${e.message}`));
    }
  }

  function points() {
    return (sweep?.runs || []).filter((r) => r.latest !== false);
  }

  function gridKeys() {
    return Object.keys(sweep?.request?.grid || {});
  }

  function render() {
    if (!sweep) return;
    const pts = points();
    fill(badge, stateBadge(sweep.state));
    const active = pts.some((r) => r.state === 'QUEUED' || r.state === 'RUNNING');
    stopBtn.hidden = !active;
    resumeBtn.hidden = active || !pts.some((r) => ['FAILED', 'CRASHED', 'STOPPED'].includes(r.state));
    const c = sweep.counts || {};
    fill(meta,
      sweep.request?.name ? h('span', {}, 'name ', h('b', {}, sweep.request.name)) : null,
      h('span', {}, `${pts.length} points`),
      h('span', {}, STATES.filter((s) => c[s]).map((s) => `${c[s]} ${s}`).join(', ') || '—'),
      h('span', {}, 'created ', when(sweep.created)),
      h('span', {}, 'grid ', h('code', {}, Object.entries(sweep.request?.grid || {}).map(([k, v]) => `${k} ∈ ${show(v)}`).join(' × '))));

    // The y choices the runs can fill.
    const avail = Y.filter(([, , , , f]) => pts.some((r) => isNum(f(r))));
    if (!avail.find((y) => y[0] === yKey)) yKey = avail.length ? avail[0][0] : '';
    const optSig = avail.map((y) => y[0]).join();
    if (ySel.dataset.sig !== optSig) {
      fill(ySel, avail.map(([k, label]) => h('option', {value: k}, label)));
      ySel.dataset.sig = optSig;
    }
    ySel.value = yKey;

    renderTable(pts);
    renderPlot(pts);
  }

  function renderTable(pts) {
    const gk = gridKeys();
    const hasAcc = pts.some((r) => isNum(Y[0][4](r)));
    const cols = ['run', ...gk, 'state', 'λ', 'active', 'mse', 'objective', 'rel_gap', ...(hasAcc ? ['test acc'] : []), 'duration', 'stop_reason'];
    const now = Date.now() / 1000;
    fill(tableBox, h('table', {class: 'grid', id: 'points-table'},
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h('tbody', {}, pts.map((r) => {
        const row = runRow(r, now);
        return h('tr', {'data-id': r.id, 'data-state': r.state},
          h('td', {}, h('a', {href: '#/runs/' + r.id}, r.id), r.attempt > 1 ? h('span', {class: 'muted'}, ` #${r.attempt}`) : null),
          gk.map((k) => h('td', {}, show(r.spec?.[k]))),
          h('td', {}, stateBadge(r.state)),
          h('td', {}, num(row.lambda)),
          h('td', {}, row.neurons ? `${row.active} / ${row.neurons}` : num(row.active)),
          h('td', {}, num(Y[1][4](r), 5)),
          h('td', {}, num(Y[2][4](r), 6)),
          h('td', {}, sci(row.rel_gap)),
          hasAcc ? h('td', {}, isNum(Y[0][4](r)) ? num(Y[0][4](r), 4) : '—') : null,
          h('td', {}, dur(row.duration)),
          h('td', {}, row.stop_reason || '—'));
      }))));
  }

  function renderPlot(pts) {
    if (!U) return;
    const y = Y.find((t) => t[0] === yKey);
    // Only points with a solution: finished ones, or stopped ones (V is kept).
    const data = pts.filter((r) => r.state === 'FINISHED' || r.state === 'STOPPED').map((r) => {
      const row = runRow(r);
      return {id: r.id, x: row.active, y: y ? y[4](r) : NaN, href: '#/runs/' + r.id,
        title: `${r.id}: ${gridKeys().map((k) => `${k}=${show(r.spec?.[k])}`).join(', ')} → ${num(row.active)} active, ${y ? y[1] : ''} ${num(y ? y[4](r) : NaN, 5)}`};
    });
    const sig = yKey + JSON.stringify(data.map((d) => [d.id, d.x, d.y]));
    if (sig === lastSig) return;
    lastSig = sig;
    chart?.destroy();
    chart = null;
    fill(plot);
    const n = data.filter((d) => isNum(d.x) && isNum(d.y)).length;
    if (!y || !n) {
      fill(plot, h('p', {class: 'muted'}, 'No finished points to plot yet.'));
      plot.dataset.points = '0';
      front.textContent = '';
      return;
    }
    chart = paretoChart(U, plot, {points: data, xLabel: 'active neurons', yLabel: y[1], maximize: y[2], log: y[3]});
    front.textContent = `${n} of ${pts.length} points plotted (finished or stopped); ${chart.front.length} on the Pareto front ` +
      `(${y[2] ? 'no other point has fewer active neurons and a higher ' : 'no other point has fewer active neurons and a lower '}${y[1]}). Click a point to open its run.`;
  }

  async function refresh() {
    try {
      sweep = await api(`/v1/sweeps/${id}`, {signal: ctl.signal});
      live.textContent = sweep.state === 'ACTIVE' ? 'live' : '';
      live.className = sweep.state === 'ACTIVE' ? 'live on' : 'live';
      render();
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404) {
        fill(msg, h('div', {class: 'banner error', role: 'alert'}, `No sweep ${id}: ${e.message}`));
        ctl.abort();
      }
      live.textContent = e.status === 401 ? 'token needed' : e.status === 0 ? 'offline' : '';
      live.className = 'live off';
    }
  }

  (async () => {
    U = await loadUPlot(plot);
    while (!ctl.signal.aborted) {
      await refresh();
      const pts = points();
      const busy = !sweep || sweep.state === 'ACTIVE' || pts.some((r) => r.state === 'QUEUED' || r.state === 'RUNNING');
      await sleep(busy ? POLL_MS : 4 * POLL_MS, ctl.signal);
    }
  })();
  const off = onConn((c, what) => { if (what !== 'online' || c.online) refresh(); });
  return () => { ctl.abort(); off(); chart?.destroy(); };
}
