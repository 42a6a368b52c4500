// experiments.js - the run page's views of the experiment kinds:
// bounds_study (count histograms against the bounds), neuron_sharing (the
// neurons of the trained student, as in the paper's Fig. 1) and compress
// (each layer's neurons kept; the model before and after).

import {rawFetch} from './api.js';
import {bubbleChart, histogramChart, COLORS} from './charts.js';
import {h, fill, num, sci, si, isNum} from './util.js';

export function experimentView(run) {
  const res = run.result;
  if (!res || typeof res !== 'object') return null;
  if (run.kind === 'bounds_study' && Array.isArray(res.panels)) return (el, U) => boundsView(el, U, run);
  if (run.kind === 'neuron_sharing' && isNum(res.active)) return (el, U) => sharingView(el, U, run);
  if (run.kind === 'compress' && (Array.isArray(res.layers) || res.before || res.after)) return (el) => compressView(el, run);
  return null;
}

// ---- bounds_study ---------------------------------------------------------------

const PANEL_NAME = {fig3: 'N', fig4: 'rank', fig5: 'K'};

function boundsView(el, U, run) {
  const res = run.result;
  const fig = res.figure || run.spec?.figure || '';
  const grid = h('div', {class: 'charts hist', id: 'bounds-hists'});
  fill(el, h('h2', {}, `Nonzero columns against the bounds (${fig})`),
    h('p', {class: 'muted'}, `${num(res.instances)} instances, ${num(res.failed || 0)} failed, ${num(res.violations || 0)} outside the bounds. `,
      'Red lines: the lower bound (N, or rank) and the upper bound rank(Φ)·rank(Ψ).'),
    grid);
  if (!U) return null;
  const charts = [];
  for (const p of res.panels) {
    const box = h('div', {class: 'chart', 'data-panel': String(p.value)});
    grid.append(box);
    const dims = ['n', 'k', 'd'].filter((k) => isNum(p[k])).map((k) => `${k.toUpperCase()}=${p[k]}`).join(', ');
    const t = `${PANEL_NAME[fig] || 'value'} = ${p.value}  (${dims}): mean ${num(p.mean, 4)} ± ${num(p.std, 3)}, range [${p.min}, ${p.max}]`;
    const hist = p.histogram || countsToHist(p.counts || []);
    charts.push(histogramChart(U, box, {title: t, hist, xLabel: 'nonzero columns', bounds: [
      {value: p.lower_bound, label: `lower ${p.lower_bound}`, color: '#dc2626'},
      {value: p.upper_bound, label: `upper ${p.upper_bound}`, color: '#dc2626'},
    ].filter((b) => isNum(b.value))}));
  }
  return {destroy() { charts.forEach((c) => c.destroy()); }};
}

function countsToHist(counts) {
  const hst = {};
  for (const c of counts) hst[c] = (hst[c] || 0) + 1;
  return hst;
}

// ---- neuron_sharing -----------------------------------------------------------------

// The tensors of a .safetensors file: {name: {shape, data: Float64Array}}.
export function parseSafetensors(buf) {
  const dv = new DataView(buf);
  const n = Number(dv.getBigUint64(0, true));
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
  const out = {};
  for (const [name, t] of Object.entries(head)) {
    if (name === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    const off = 8 + n + a;
    const count = t.shape.reduce((x, y) => x * y, 1);
    const data = new Float64Array(count);
    const sz = {F64: 8, F32: 4, F16: 2, BF16: 2}[t.dtype];
    if (!sz || (b - a) !== count * sz) continue;
    for (let i = 0; i < count; i++) {
      const p = off + i * sz;
      data[i] = t.dtype === 'F64' ? dv.getFloat64(p, true) : t.dtype === 'F32' ? dv.getFloat32(p, true)
        : t.dtype === 'BF16' ? new Float32Array(new Uint32Array([dv.getUint16(p, true) << 16]).buffer)[0]
          : half(dv.getUint16(p, true));
    }
    out[name] = {shape: t.shape, data};
  }
  return out;
}

function half(u) {
  const s = u & 0x8000 ? -1 : 1, e = (u >> 10) & 31, f = u & 1023;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

const ACTIVE = 1e-3; // the paper's threshold on |v_jk| ||w_k||

function sharingView(el, U, run) {
  const res = run.result;
  const used = Array.isArray(res.used_by_output) ? res.used_by_output.map((c, j) => `f${j + 1}: ${c}`).join(', ') : '—';
  const stats = h('div', {class: 'cards'},
    [['active neurons', `${num(res.active)} of ${num(res.width)}`], ['shared by all outputs', num(res.shared)],
      ['used by one output', num(res.used_by_one)], ['used by output', used], ['mse', sci(res.mse)],
      ['VV norm', num(res.vv_norm, 5) + (isNum(res.teacher_vv_norm) ? ` (teacher ${num(res.teacher_vv_norm, 4)})` : '')]]
      .map(([k, v]) => h('div', {class: 'card'}, h('div', {class: 'k'}, k), h('div', {class: 'v'}, v))));
  const plot = h('div', {class: 'charts', id: 'neuron-scatter'});
  const legend = h('div', {class: 'legend', id: 'neuron-legend'});
  fill(el, h('h2', {}, 'Neurons of the trained student'), stats,
    h('p', {class: 'muted'}, 'One panel per output f_j: each neuron k that f_j uses (|v_jk|·‖w_k‖ > 1e-3), at its direction θ_k and offset b_k/‖w_k‖, ',
      'its area growing with |v_jk|·‖w_k‖ (the paper\'s Fig. 1). A neuron that appears in every panel is shared.'),
    plot, legend);
  const art = (run.artifacts || []).find((a) => a.name.endsWith('.safetensors'));
  if (!U || !art) {
    if (!art) fill(plot, h('p', {class: 'muted'}, 'No weights artifact to draw the neurons from.'));
    return null;
  }
  const charts = [];
  let dead = false;
  (async () => {
    try {
      const r = await rawFetch(art.url);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const t = parseSafetensors(await r.arrayBuffer());
      if (dead) return;
      const W = t['0.weight'], B = t['0.bias'], V = t['2.weight'];
      if (!W || !V) throw new Error('the weights lack 0.weight or 2.weight');
      const [width, din] = W.shape;
      const dout = V.shape[0];
      let vmax = 0;
      const neurons = [];
      for (let k = 0; k < width; k++) {
        let wn = 0;
        for (let i = 0; i < din; i++) wn += W.data[k * din + i] ** 2;
        wn = Math.sqrt(wn);
        const theta = din === 2 ? (Math.atan2(W.data[k * 2 + 1], W.data[k * 2]) + 2 * Math.PI) % (2 * Math.PI) : k;
        const off = B && wn > 0 ? B.data[k] / wn : 0;
        const vh = [];
        for (let j = 0; j < dout; j++) { vh.push(Math.abs(V.data[j * width + k]) * wn); vmax = Math.max(vmax, vh[j]); }
        neurons.push({theta, off, vh});
      }
      const used = neurons.filter((n) => n.vh.some((v) => v > ACTIVE));
      const shared = neurons.filter((n) => n.vh.every((v) => v > ACTIVE)).length;
      // The paper's y range [-3, 3].
      const ylo = -3, yhi = 3, pad = 0.2;
      const outside = used.filter((n) => !(Math.abs(n.off) <= 3)).length;
      const xTicks = din === 2 ? [[0, '0'], [Math.PI / 2, 'π/2'], [Math.PI, 'π'], [3 * Math.PI / 2, '3π/2'], [2 * Math.PI, '2π']] : null;
      const panels = [];
      for (let j = 0; j < Math.min(dout, 8); j++) {
        const g = {label: `f${j + 1}`, color: COLORS[j % COLORS.length], xs: [], ys: [], sizes: []};
        for (const n of neurons) {
          if (!(n.vh[j] > ACTIVE) || !(Math.abs(n.off) <= 3)) continue;
          g.xs.push(n.theta);
          g.ys.push(n.off);
          g.sizes.push(vmax > 0 ? n.vh[j] / vmax : 0);
        }
        const usedJ = neurons.filter((n) => n.vh[j] > ACTIVE).length;
        const box = h('div', {class: 'chart', 'data-output': String(j + 1)},
          h('div', {class: 'u-title'}, `f${j + 1}: uses ${usedJ} neurons` + (usedJ > g.xs.length ? ` (${g.xs.length} drawn)` : '')));
        plot.append(box);
        panels.push(box);
        charts.push(bubbleChart(U, box, {groups: [g], xLabel: din === 2 ? 'θ_k (direction of w_k)' : 'neuron k',
          yLabel: 'b_k / ‖w_k‖', xRange: din === 2 ? [0, 2 * Math.PI] : [-1, width], yRange: [ylo - pad, yhi + pad], xTicks, height: 260}));
      }
      plot.dataset.shared = String(shared);
      plot.dataset.points = String(charts.reduce((a, c, j) => a + Number(panels[j].dataset.points || 0), 0));
      fill(legend, h('span', {class: 'muted'}, `${used.length} neurons used, ${shared} by every output (shared)` +
        (outside ? `; ${outside} with b_k/‖w_k‖ outside [−3, 3] are not drawn` : '') +
        (dout > 8 ? `; the first 8 of ${dout} outputs are drawn` : '')));
    } catch (e) {
      if (!dead) fill(plot, h('p', {class: 'note error'}, `Cannot draw the neurons: ${e.message}`));
    }
  })();
  return {destroy() { dead = true; charts.forEach((c) => c.destroy()); }};
}

// ---- compress -----------------------------------------------------------------------

const MODEL_ROWS = [
  ['test_acc', 'test accuracy', 'acc'], ['train_acc', 'train accuracy', 'acc'],
  ['test_loss', 'test loss', 'loss'], ['train_loss', 'train loss', 'loss'],
  ['params', 'parameters', 'count'], ['macs', 'MACs', 'count'], ['latency_ms', 'latency (ms)', 'ms'],
];

function fmtModel(v, how) {
  if (!isNum(v)) return '—';
  if (how === 'acc') return (v <= 1 ? (100 * v).toFixed(2) : v.toFixed(2)) + ' %';
  if (how === 'count') return si(v);
  if (how === 'ms') return num(v, 4);
  return num(v, 5);
}

function change(b, a, how) {
  if (!isNum(b) || !isNum(a)) return '—';
  if (how === 'acc') {
    const d = (a - b) * (b <= 1 && a <= 1 ? 100 : 1);
    return (d >= 0 ? '+' : '') + d.toFixed(2) + ' pt';
  }
  if (b === 0) return '—';
  const r = a / b;
  return how === 'count' || how === 'ms' ? `×${num(r, 3)} (${r < 1 ? '−' : '+'}${num(Math.abs(1 - r) * 100, 3)} %)` : (a - b >= 0 ? '+' : '') + num(a - b, 4);
}

// The stages of a compress run in pipeline order, and their labels.
const STAGES = [['before', 'before'], ['pruned', 'pruned'], ['refit', 'refit'], ['finetuned', 'fine-tuned'], ['after', 'after']];
const BASE_STAGES = [['pruned', 'magnitude, pruned'], ['refit', 'magnitude, refit'], ['finetuned', 'magnitude, fine-tuned']];

// A compress run's test accuracy at each stage (stages: {before: {test_acc,
// params, ...}, pruned, refit, finetuned, after}; base: the magnitude
// baseline's stages) as one bar per stage: separate evaluations, not a
// curve through the solver's iterations.
export function stagePanel(stages, base = {}) {
  const rows = [];
  for (const [k, label] of STAGES) if (isNum(stages[k]?.test_acc)) rows.push({k, label, v: stages[k], cls: k === 'before' ? 'before' : ''});
  for (const [k, label] of BASE_STAGES) if (isNum(base[k]?.test_acc)) rows.push({k: 'baseline_' + k, label, v: base[k], cls: 'baseline'});
  if (!rows.length) return null;
  const pct = (a) => (a <= 1 ? 100 * a : a);
  return [h('h3', {}, 'Test accuracy at each stage'),
    h('div', {class: 'stages', id: 'stage-acc', 'data-stages': rows.map((r) => r.k).join(',')},
      rows.map((r) => [
        h('span', {}, r.label, isNum(r.v.params) ? h('span', {class: 'muted'}, ` · ${si(r.v.params)}`) : null),
        h('div', {class: 'bar ' + r.cls, 'data-stage': r.k, 'data-acc': String(r.v.test_acc)},
          h('i', {style: `width:${Math.max(0, Math.min(100, pct(r.v.test_acc))).toFixed(1)}%`})),
        h('span', {class: 'v'}, pct(r.v.test_acc).toFixed(2) + ' %')])),
    h('p', {class: 'muted'}, 'Each bar is one evaluation of the whole network on the test set (parameters after the dot); ' +
      'the lasso\'s iterations in between change the weights of one layer at a time and are not evaluated.')];
}

function compressView(el, run) {
  const res = run.result;
  const layers = Array.isArray(res.layers) ? res.layers : [];
  const before = res.before || {}, after = res.after || {};
  const tot = layers.reduce((t, l) => [t[0] + (l.neurons || 0), t[1] + (l.kept || 0)], [0, 0]);
  const notes = layers.some((l) => l.note);
  fill(el, h('h2', {}, 'Compression'),
    layers.length ? h('h3', {}, layers.some((l) => l.unit === 'channel') ? 'Layers: neurons and channels kept' : 'Layers: neurons kept') : null,
    layers.length ? h('table', {class: 'grid', id: 'compress-layers'},
      h('thead', {}, h('tr', {}, ['layer', 'neurons', 'kept', 'kept %', 'λ', 'rel_gap', 'iterations', 'solver', 'stop_reason', notes ? 'note' : null]
        .filter(Boolean).map((t) => h('th', {}, t)))),
      h('tbody', {}, layers.map((l) => h('tr', {'data-layer': l.layer},
        h('td', {}, h('code', {}, l.layer), l.unit === 'channel' ? h('span', {class: 'muted'}, ` channels of ${l.producer}`) : null),
        h('td', {}, num(l.neurons)), h('td', {}, num(l.kept)),
        h('td', {}, isNum(l.kept) && l.neurons ? (100 * l.kept / l.neurons).toFixed(1) + ' %' : '—'),
        h('td', {}, num(l.lambda)), h('td', {}, sci(l.rel_gap)), h('td', {}, num(l.iterations)),
        h('td', {}, l.solver_used ? (res.solver && res.solver !== l.solver_used ? `${res.solver} → ${l.solver_used}` : l.solver_used) : res.solver || '—'),
        h('td', {}, l.stop_reason || '—'),
        notes ? h('td', {class: 'note-cell'}, l.note || '') : null))),
      layers.length > 1 ? h('tfoot', {}, h('tr', {}, h('th', {}, 'all'), h('td', {}, num(tot[0])), h('td', {}, num(tot[1])),
        h('td', {}, tot[0] ? (100 * tot[1] / tot[0]).toFixed(1) + ' %' : '—'), h('td', {colspan: notes ? 6 : 5}))) : null) : null,
    h('h3', {}, 'The model before and after'),
    h('table', {class: 'grid', id: 'compress-model'},
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'before'), h('th', {}, 'after'), h('th', {}, 'change'))),
      h('tbody', {}, MODEL_ROWS.filter(([k]) => k in before || k in after).map(([k, label, how]) => h('tr', {'data-key': k},
        h('th', {}, label), h('td', {}, fmtModel(before[k], how)), h('td', {}, fmtModel(after[k], how)),
        h('td', {}, change(before[k], after[k], how)))))));
  return null;
}
