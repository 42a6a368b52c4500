// sweep.js - the Sweep page: its points as a table, a Pareto plot (active
// neurons against a loss, or test accuracy when the runs report it) whose
// points link to their runs, the λ path (active neurons, mse or objective and
// test accuracy against λ) and, for compress sweeps, parameters (or MACs)
// against test accuracy with the model before compression as a reference.

import {api, onConn} from './api.js';
import {loadUPlot, paretoChart, lambdaPathChart, COLORS} from './charts.js';
import {runRow} from './runs.js';
import {h, fill, num, sci, si, dur, when, show, stateBadge, isNum, sleep, STATES} from './util.js';

const POLL_MS = 2000;

// The y choices of the Pareto plot: [key, label, maximise, log scale, value of a run].
const Y = [
  ['test_acc', 'test accuracy', true, false, (r) => testAcc(r)],
  ['mse', 'mse', false, false, (r) => r.summary?.mse ?? r.result?.mse],
  ['objective', 'objective', false, false, (r) => r.summary?.objective ?? r.result?.objective],
  ['test_loss', 'test loss', false, false, (r) => r.result?.after?.test_loss ?? r.result?.test_loss],
];

function testAcc(r) {
  return r.result?.test_acc ?? r.result?.after?.test_acc ?? r.summary?.test_acc;
}

// λ of a run, from its result or summary; its λ ratio (λ / λ_max) otherwise.
const lambdaOf = (r) => r.result?.lambda ?? r.summary?.lambda;
const ratioOf = (r) => r.result?.lambda_ratio ?? r.spec?.lambda_ratio;

// A compress run's size: parameters or multiply-adds after compression.
const sizeOf = (r, key) => r.result?.[key] ?? r.result?.after?.[key] ?? r.result?.stages?.finetuned?.[key];

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
  const pathPlot = h('div', {class: 'chart wide', id: 'lambda-path'});
  const pathNote = h('p', {class: 'muted', id: 'lambda-path-note'});
  const paSel = h('select', {id: 'pa-x', 'aria-label': 'size measure', onchange: () => { paKey = paSel.value; lastPaSig = ''; render(); }},
    h('option', {value: 'params'}, 'parameters'), h('option', {value: 'macs'}, 'multiply-adds'));
  const paPlot = h('div', {class: 'chart wide', id: 'params-acc'});
  const paNote = h('p', {class: 'muted', id: 'params-acc-note'});
  const paBox = h('section', {id: 'params-acc-box', hidden: true},
    h('div', {class: 'section-head'}, h('h2', {}, 'Size against test accuracy'), h('label', {}, 'x ', paSel)), paPlot, paNote);
  const deletedBox = h('div', {id: 'sweep-deleted'});
  let pathChart = null, paChart = null;
  let lastPathSig = '', lastPaSig = '';
  let paKey = 'params';

  const head = h('div', {class: 'page-head'}, h('a', {href: '#/sweeps', class: 'back'}, '← Sweeps'), title, badge, stopBtn, resumeBtn, live);
  fill(root, head, msg);
  // The panels appear with the sweep (an unknown sweep shows only its error).
  const panels = [meta,
    h('div', {class: 'two'},
      h('section', {}, h('div', {class: 'section-head'}, h('h2', {}, 'Pareto plot'), h('label', {}, 'y ', ySel)), plot, front),
      h('section', {}, h('div', {class: 'section-head'}, h('h2', {}, 'λ path')), pathPlot, pathNote)),
    paBox,
    h('section', {}, h('h2', {}, 'Points'), tableBox, deletedBox)];
  let shown = false;

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
    if (!shown) {
      shown = true;
      head.after(...panels);
    }
    const pts = points();
    fill(badge, stateBadge(sweep.state));
    const active = pts.some((r) => r.state === 'QUEUED' || r.state === 'RUNNING');
    stopBtn.hidden = !active;
    resumeBtn.hidden = active || !pts.some((r) => ['FAILED', 'CRASHED', 'STOPPED'].includes(r.state));
    const c = sweep.counts || {};
    const name = sweep.name ?? sweep.request?.name;
    const kind = sweep.kind ?? sweep.request?.base?.kind;
    fill(meta,
      name ? h('span', {}, 'name ', h('b', {}, name)) : null,
      kind ? h('span', {}, 'kind ', h('b', {}, kind)) : null,
      h('span', {}, `${pts.length} points`),
      h('span', {}, STATES.filter((s) => c[s]).map((s) => `${c[s]} ${s}`).join(', ') || '—'),
      h('span', {}, 'created ', when(sweep.created)),
      h('span', {}, 'grid ', h('code', {}, Object.entries(sweep.grid || sweep.request?.grid || {}).map(([k, v]) => `${k} ∈ ${show(v)}`).join(' × '))));

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
    renderDeleted();
    renderPlot(pts);
    renderPath(pts);
    renderSizeAcc(pts);
  }

  function renderDeleted() {
    const del = Array.isArray(sweep.deleted) ? sweep.deleted : [];
    fill(deletedBox, del.length ? [h('h3', {}, `Deleted runs (${del.length})`),
      h('table', {class: 'grid', id: 'deleted-table'}, h('thead', {}, h('tr', {}, ['run', 'attempt', 'state', 'deleted'].map((c) => h('th', {}, c)))),
        h('tbody', {}, del.map((d) => h('tr', {'data-id': d.id}, h('td', {}, d.id), h('td', {}, num(d.attempt)),
          h('td', {}, stateBadge(d.state)), h('td', {}, when(d.deleted))))))] : null);
  }

  // The λ path: one point per finished latest attempt, joined in λ order.
  function renderPath(pts) {
    if (!U) return;
    const fin = pts.filter((r) => r.state === 'FINISHED');
    // A compress run has a λ per layer (each with its own λ_max): its λ ratio is the common x.
    const byLambda = fin.length && fin.every((r) => r.kind !== 'compress' && isNum(lambdaOf(r)) && lambdaOf(r) > 0);
    const xOf = byLambda ? lambdaOf : ratioOf;
    const rows = fin.filter((r) => isNum(xOf(r)) && xOf(r) > 0).map((r) => ({id: r.id, x: xOf(r), row: runRow(r), r}))
      .sort((a, b) => a.x - b.x);
    const loss = rows.some((p) => isNum(Y[1][4](p.r))) ? Y[1] : Y[2];
    const cand = [
      {key: 'active', label: 'active neurons', scale: 'n', int: true, ys: rows.map((p) => (isNum(p.row.active) ? p.row.active : null))},
      {key: loss[0], label: loss[1], scale: 'loss', ys: rows.map((p) => (isNum(loss[4](p.r)) ? loss[4](p.r) : null))},
      {key: 'test_acc', label: 'test accuracy', scale: 'acc', ys: rows.map((p) => (isNum(testAcc(p.r)) ? testAcc(p.r) : null))},
    ].filter((c) => c.ys.some((v) => v !== null));
    const color = {active: COLORS[0], mse: COLORS[1], objective: COLORS[1], test_acc: COLORS[2]};
    for (const c of cand) c.color = color[c.key];
    const sig = JSON.stringify([rows.map((p) => [p.id, p.x]), cand.map((c) => [c.key, c.ys])]);
    if (sig === lastPathSig) return;
    lastPathSig = sig;
    pathChart?.destroy();
    pathChart = null;
    fill(pathPlot);
    if (!rows.length || !cand.length) {
      fill(pathPlot, h('p', {class: 'muted'}, 'No finished points with a λ yet.'));
      pathPlot.dataset.points = '0';
      pathNote.textContent = '';
      return;
    }
    pathChart = lambdaPathChart(U, pathPlot, {xs: rows.map((p) => p.x), series: cand, xLabel: byLambda ? 'λ' : 'λ / λ_max'});
    pathNote.textContent = `${rows.length} finished point${rows.length === 1 ? '' : 's'} (latest attempts) in order of ${byLambda ? 'λ' : 'the λ ratio'}, on a log scale: ` +
      cand.map((c) => c.label).join(', ') + '.';
  }

  // Compress sweeps: parameters (or MACs) against test accuracy; the model
  // before compression as the reference.
  function renderSizeAcc(pts) {
    const comp = pts.filter((r) => r.kind === 'compress' || r.result?.kind === 'compress');
    paBox.hidden = !comp.length;
    if (!U || !comp.length) return;
    const hasMacs = comp.some((r) => isNum(sizeOf(r, 'macs')));
    paSel.hidden = !hasMacs;
    if (!hasMacs) paKey = 'params';
    paSel.value = paKey;
    const data = comp.filter((r) => r.state === 'FINISHED').map((r) => ({id: r.id, x: sizeOf(r, paKey), y: testAcc(r), href: '#/runs/' + r.id,
      title: `${r.id}: ${gridKeys().map((k) => `${k}=${show(r.spec?.[k])}`).join(', ')} → ${si(sizeOf(r, paKey))} ${paKey}, test accuracy ${num(testAcc(r), 4)}`}));
    const b = comp.map((r) => r.result?.before || r.result?.stages?.before).find((x) => x && isNum(x[paKey]) && isNum(x.test_acc));
    const ref = b ? {x: b[paKey], y: b.test_acc, label: `before: ${si(b[paKey])}, ${(100 * b.test_acc).toFixed(2)} %`} : null;
    const sig = paKey + JSON.stringify([data.map((d) => [d.id, d.x, d.y]), ref]);
    if (sig === lastPaSig) return;
    lastPaSig = sig;
    paChart?.destroy();
    paChart = null;
    fill(paPlot);
    const n = data.filter((d) => isNum(d.x) && isNum(d.y)).length;
    if (!n) {
      fill(paPlot, h('p', {class: 'muted'}, 'No finished compress runs to plot yet.'));
      paPlot.dataset.points = '0';
      paNote.textContent = '';
      return;
    }
    paChart = paretoChart(U, paPlot, {points: data, xLabel: paKey === 'macs' ? 'multiply-adds per image' : 'parameters', yLabel: 'test accuracy',
      maximize: true, ref, xFmt: si});
    paNote.textContent = `${n} compressed model${n === 1 ? '' : 's'}; ` + (ref ? 'the grey square and dashed line: the model before compression. ' : '') +
      'Orange: the front (no other point is smaller and more accurate). Click a point to open its run.';
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
        // Only the error: the panels are not shown for a sweep that does not exist.
        for (const p of panels) p.remove();
        shown = false;
        badge.replaceChildren();
        stopBtn.hidden = resumeBtn.hidden = true;
        fill(msg, h('div', {class: 'banner error', role: 'alert', id: 'sweep-error'}, `No sweep ${id}: ${e.message}`));
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
  return () => { ctl.abort(); off(); chart?.destroy(); pathChart?.destroy(); paChart?.destroy(); };
}
