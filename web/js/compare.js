// compare.js - the Compare view (#/compare?ids=r-000001,r-000002[&x=time]):
// the picked runs' curves overlaid, one chart per metric key, x the
// iteration or the time; the spec parameters that differ between the runs
// (nested objects flattened to dotted names); their final summary values.

import {api} from './api.js';
import {loadUPlot, overlayChart, COLORS} from './charts.js';
import {h, fill, num, dur, flatten, show, stateBadge, isNum} from './util.js';

// Charted first, in this order; other keys follow alphabetically.
const ORDER = ['rel_gap', 'objective', 'active', 'mse', 'test_acc', 'train_acc', 'test_loss', 'train_loss', 'loss',
  'vv_norm', 'group_norm', 'gap'];
const LOG = new Set(['rel_gap', 'gap']);
// Keys that are not curves: constants and counters.
const SKIP = new Set(['lambda', 'epoch', 'lr', 'step', 'time']);
// A compress run's evaluations (one per stage, at a few steps): points, not lines.
const EVALS = new Set(['train_acc', 'test_acc', 'train_loss', 'test_loss', 'params', 'macs', 'latency_ms', 'loss']);
const LABELS = {objective: 'objective P(V)', rel_gap: 'relative duality gap', active: 'active neurons', mse: 'mse',
  test_acc: 'test accuracy', train_acc: 'train accuracy', test_loss: 'test loss', train_loss: 'train loss'};

// The run's name for a legend: "r-000001 (name)".
const runLabel = (r) => (r.name ? `${r.id} (${r.name})` : r.id);

// {key: {steps, times, vals}} from the metrics endpoint's points.
function series(points) {
  const out = {};
  for (const p of points || []) {
    if (!isNum(p.value) || SKIP.has(p.key)) continue;
    const s = out[p.key] || (out[p.key] = {steps: [], times: [], vals: []});
    s.steps.push(p.step);
    s.times.push(isNum(p.time) ? p.time : null);
    s.vals.push(p.value);
  }
  return out;
}

// The rows [key, values per run] of the flattened specs; same: whether all agree.
export function paramRows(specs) {
  const flat = specs.map((s) => new Map(flatten(s || {})));
  const keys = [...new Set(flat.flatMap((m) => [...m.keys()]))].sort();
  return keys.map((k) => {
    const vals = flat.map((m) => (m.has(k) ? m.get(k) : undefined));
    const sig = vals.map((v) => (v === undefined ? '\u0000absent' : JSON.stringify(v)));
    return {key: k, vals, same: sig.every((x) => x === sig[0])};
  });
}

// The final numbers of a run for the summary table.
function finals(r) {
  const res = r.result || {};
  const out = Object.assign({}, r.summary || {});
  const acc = res.test_acc ?? res.after?.test_acc;
  if (isNum(acc)) out.test_acc = acc;
  const params = res.params ?? res.after?.params;
  if (isNum(params)) out.params = params;
  if (r.started > 0 && r.finished > 0) out.duration = r.finished - r.started;
  return out;
}

export function mount(root, params) {
  const ids = [...new Set((params.get('ids') || '').split(',').map((s) => s.trim()).filter(Boolean))];
  let xMode = params.get('x') === 'time' ? 'time' : 'step';
  let destroyed = false;
  let charts = [];
  let data = null; // [{run, m: series, color}]
  let U = null;

  const xToggle = h('div', {class: 'seg', role: 'group', 'aria-label': 'x axis'},
    h('button', {id: 'cx-step', onclick: () => setX('step')}, 'iterations'),
    h('button', {id: 'cx-time', onclick: () => setX('time')}, 'time'));
  const msg = h('div', {id: 'compare-msg'});
  const legend = h('div', {class: 'legend', id: 'compare-legend'});
  const grid = h('div', {class: 'charts', id: 'compare-charts'});
  const showEqual = h('input', {type: 'checkbox', id: 'show-equal', onchange: renderParams});
  const paramsBox = h('div', {class: 'table-wrap', id: 'compare-params-box'});
  const sumBox = h('div', {class: 'table-wrap', id: 'compare-summary-box'});
  const body = h('div', {id: 'compare-body', hidden: true},
    legend,
    h('section', {}, h('div', {class: 'section-head'}, h('h2', {}, 'Curves'), xToggle), grid),
    h('section', {}, h('div', {class: 'section-head'}, h('h2', {}, 'Parameters that differ'),
      h('label', {class: 'muted'}, showEqual, ' show equal ones too')), paramsBox),
    h('section', {}, h('h2', {}, 'Final values'), sumBox));

  fill(root, h('div', {class: 'page-head'}, h('a', {href: '#/runs', class: 'back'}, '← Runs'),
    h('h1', {}, 'Compare'), h('span', {class: 'muted'}, ids.join(', '))), msg, body);
  markX();

  function markX() {
    xToggle.querySelector('#cx-step').classList.toggle('on', xMode === 'step');
    xToggle.querySelector('#cx-time').classList.toggle('on', xMode === 'time');
  }

  function setX(mode) {
    if (mode === xMode) return;
    xMode = mode;
    markX();
    const q = new URLSearchParams(params);
    if (mode === 'time') q.set('x', 'time'); else q.delete('x');
    history.replaceState(null, '', '#/compare?' + q.toString().replace(/%2C/gi, ','));
    renderCharts();
  }

  function renderCharts() {
    for (const c of charts) c.destroy();
    charts = [];
    fill(grid);
    if (!U || !data) return;
    const keys = [...new Set(data.flatMap((d) => Object.keys(d.m)))];
    keys.sort((a, b) => {
      const ia = ORDER.indexOf(a), ib = ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    for (const k of keys) {
      const el = h('div', {class: 'chart', 'data-chart': k});
      grid.append(el);
      const runs = data.filter((d) => d.m[k]).map((d) => {
        const s = d.m[k];
        const xs = xMode === 'time' ? s.times : s.steps;
        return {label: runLabel(d.run), color: d.color, xs, ys: s.vals,
          pointsOnly: d.run.kind === 'compress' && EVALS.has(k)};
      });
      el.dataset.runs = data.filter((d) => d.m[k]).map((d) => d.run.id).join(',');
      charts.push(overlayChart(U, el, {title: LABELS[k] || k, runs, log: LOG.has(k),
        xLabel: xMode === 'time' ? 'time (s)' : 'iteration', xInt: xMode !== 'time'}));
    }
    grid.dataset.charts = String(keys.length);
    if (!keys.length) fill(grid, h('p', {class: 'muted'}, 'These runs have no metrics.'));
  }

  function renderParams() {
    const rows = paramRows(data.map((d) => d.run.spec));
    const diff = rows.filter((r) => !r.same);
    const list = showEqual.checked ? rows : diff;
    fill(paramsBox, h('table', {class: 'grid', id: 'compare-params', 'data-differ': String(diff.length)},
      h('thead', {}, h('tr', {}, h('th', {}, 'parameter'), data.map((d) => h('th', {}, h('a', {href: '#/runs/' + d.run.id}, d.run.id))))),
      h('tbody', {}, list.length ? list.map((r) => h('tr', {'data-key': r.key, class: r.same ? 'same muted' : 'differ'},
        h('th', {}, h('code', {}, r.key)), r.vals.map((v) => h('td', {}, v === undefined ? h('span', {class: 'muted'}, '(absent)') : show(v)))))
        : h('tr', {}, h('td', {colspan: data.length + 1, class: 'muted empty'}, 'The runs have the same parameters.')))),
    h('p', {class: 'muted'}, `${diff.length} of ${rows.length} parameters differ.`));
  }

  function renderSummary() {
    const fs = data.map((d) => finals(d.run));
    const keys = [...new Set(fs.flatMap((x) => Object.keys(x)))].filter((k) => fs.some((x) => isNum(x[k])));
    keys.sort((a, b) => {
      const ia = ORDER.indexOf(a), ib = ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    fill(sumBox, h('table', {class: 'grid', id: 'compare-summary'},
      h('thead', {}, h('tr', {}, h('th', {}, ''), data.map((d) => h('th', {}, h('a', {href: '#/runs/' + d.run.id}, d.run.id))))),
      h('tbody', {},
        h('tr', {'data-key': 'state'}, h('th', {}, 'state'), data.map((d) => h('td', {}, stateBadge(d.run.state),
          d.run.stop_reason ? h('span', {class: 'muted'}, ` ${d.run.stop_reason}`) : null))),
        h('tr', {'data-key': 'solver'}, h('th', {}, 'solver'), data.map((d) => h('td', {}, solverText(d.run)))),
        keys.map((k) => h('tr', {'data-key': k}, h('th', {}, LABELS[k] || k),
          fs.map((x) => h('td', {}, k === 'duration' || k === 'seconds' ? dur(x[k]) : num(x[k], 6))))))));
  }

  async function load() {
    if (ids.length < 1) {
      fill(msg, h('div', {class: 'banner info'}, 'Pick two or more runs with the checkboxes on the ', h('a', {href: '#/runs'}, 'Runs'), ' page, then press Compare.'));
      return;
    }
    U = await loadUPlot(grid);
    const got = await Promise.all(ids.map(async (id, i) => {
      try {
        const [run, met] = await Promise.all([api(`/v1/runs/${encodeURIComponent(id)}`), api(`/v1/runs/${encodeURIComponent(id)}/metrics`)]);
        return {run, m: series(met.metrics), color: COLORS[i % COLORS.length]};
      } catch (e) {
        return {id, error: e};
      }
    }));
    if (destroyed) return;
    const bad = got.filter((g) => g.error);
    data = got.filter((g) => !g.error);
    fill(msg, bad.map((b) => h('div', {class: 'banner error', role: 'alert'}, `${b.id}: ${b.error.message}`)));
    if (!data.length) return;
    body.hidden = false;
    fill(legend, data.map((d) => h('span', {'data-run': d.run.id},
      h('span', {class: 'sw', style: `background:${d.color}`}), h('a', {href: '#/runs/' + d.run.id}, runLabel(d.run)), ' ',
      h('span', {class: 'muted'}, d.run.kind), ' ', stateBadge(d.run.state))));
    renderCharts();
    renderParams();
    renderSummary();
  }

  load();
  return () => { destroyed = true; for (const c of charts) c.destroy(); };
}

// "auto → bcd" when the solver was chosen, else the solver.
export function solverText(run) {
  const res = run.result || {};
  const asked = run.spec?.solver ?? res.solver ?? null;
  const used = res.solver_used ?? null;
  if (!asked && !used) return '—';
  if (used && asked && used !== asked) return `${asked} → ${used}`;
  return used || asked;
}
