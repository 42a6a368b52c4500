// charts.js - uPlot charts: live line charts, a Pareto scatter whose points are
// links, histograms with bound lines, and a bubble scatter.  uPlot comes from
// web/node_modules (npm ci in web/, run by deploy/install-deps.sh).

import {h, fill, sci, num} from './util.js';

const uPlotP = import('../node_modules/uplot/dist/uPlot.esm.js').then((m) => m.default).catch(() => null);

// Tick steps for axes of whole numbers (steps, counts).
const INT_INCRS = [];
for (let e = 0; e < 12; e++) for (const m of [1, 2, 5]) INT_INCRS.push(m * 10 ** e);

export const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#dc2626', '#0891b2', '#ca8a04', '#db2777'];

// Resolves to the uPlot constructor, or null (and a note in el) when it is missing.
export async function loadUPlot(el) {
  const U = await uPlotP;
  if (!U && el) {
    fill(el, h('p', {class: 'note error'},
      'Charts need uPlot in web/node_modules: run `npm ci` in web/ (deploy/install-deps.sh does).'));
  }
  return U;
}

// Keeps a chart as wide as its container.
function autosize(u, el, height) {
  const ro = new ResizeObserver(() => {
    const w = Math.max(200, Math.floor(el.clientWidth));
    if (Math.abs(w - u.width) > 2) u.setSize({width: w, height});
  });
  ro.observe(el);
  return () => ro.disconnect();
}

const logTicks = (u, vals) => vals.map((v) => (v === null ? '' : sci(v, 1)));
// Decades only, at most about six of them, on a log axis.
function logSplits(u, axisIdx, min, max) {
  if (!(min > 0) || !(max > 0)) return [];
  const lo = Math.floor(Math.log10(min) + 1e-9), hi = Math.ceil(Math.log10(max) - 1e-9);
  const step = Math.max(1, Math.ceil((hi - lo) / 6));
  const out = [];
  for (let e = lo; e <= hi; e += step) out.push(10 ** e);
  return out;
}

// The y range of a log chart fitted to the data: whole decades around the
// positive values.  refs: reference values (a tolerance); each is drawn (and
// the range widened to it) only when it lies within two decades of the data,
// so that a curve far above its tolerance still spans the chart.
// Returns {min, max, dmin, dmax, drawn: [bool per ref]} or null (no data).
export function logRange(vals, refs = []) {
  let lo = Infinity, hi = -Infinity;
  for (const v of vals) if (v > 0 && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!(lo <= hi)) return null;
  let a = Math.floor(Math.log10(lo) + 1e-9), b = Math.ceil(Math.log10(hi) - 1e-9);
  if (b <= a) b = a + 1;
  const drawn = refs.map((r) => r > 0 && r >= lo / 100 && r <= hi * 100);
  refs.forEach((r, i) => {
    if (!drawn[i]) return;
    a = Math.min(a, Math.floor(Math.log10(r) + 1e-9));
    b = Math.max(b, Math.ceil(Math.log10(r) - 1e-9));
  });
  return {min: 10 ** a, max: 10 ** b, dmin: lo, dmax: hi, drawn};
}

// Vertical marks ({x, label}, x in the chart's x units) with their labels at
// the top of the plot: layer boundaries, stages.
function drawMarks(u, marks, color = '#64748b') {
  if (!marks.length) return;
  const ctx = u.ctx;
  const px = devicePixelRatio;
  ctx.save();
  ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = 1.5 * px;
  ctx.setLineDash([4 * px, 3 * px]);
  for (const m of marks) {
    const x = Math.round(u.valToPos(m.x, 'x', true));
    if (!(x >= u.bbox.left - 1 && x <= u.bbox.left + u.bbox.width + 1)) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    const right = x > u.bbox.left + u.bbox.width * 0.8;
    ctx.textAlign = right ? 'right' : 'left';
    ctx.fillText(m.label, x + (right ? -4 : 4) * px, u.bbox.top + 12 * px);
  }
  ctx.restore();
}

// A note at the bottom right of the plot (a reference line off the axis).
function drawNote(u, text, color) {
  const ctx = u.ctx;
  const px = devicePixelRatio;
  ctx.save();
  ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
  ctx.fillStyle = color;
  ctx.textAlign = 'right';
  ctx.fillText(text, u.bbox.left + u.bbox.width - 6 * px, u.bbox.top + u.bbox.height - 6 * px);
  ctx.restore();
}

// Writes a log chart's fitted range on its container (data-ymin, data-ymax:
// the axis; data-dmin, data-dmax: the data) for tests and curious users.
function markRange(el, r) {
  if (!r) {
    for (const k of ['ymin', 'ymax', 'dmin', 'dmax']) delete el.dataset[k];
    return;
  }
  el.dataset.ymin = String(r.min);
  el.dataset.ymax = String(r.max);
  el.dataset.dmin = String(r.dmin);
  el.dataset.dmax = String(r.dmax);
}

// A line chart of one metric against the step or the time.  lines: constant
// reference lines ({label, value, color}); on a log chart the y axis fits the
// data and a line more than two decades away is not drawn but noted (its
// value stays in the legend; data-refs says "drawn" or "off").  set(xs, ys)
// replaces the data (ys with nulls for gaps); setMarks([{x, label}]) draws
// vertical marks (layer boundaries).  The container's data-points attribute
// holds the number of plotted points, for tests and curious users.
export function lineChart(U, el, {title, label, log = false, lines = [], xLabel = 'iteration', xInt = true, color = COLORS[0], height = 210}) {
  let range = null;
  let marks = [];
  const series = [
    {label: xLabel, value: (u, v) => (v === null ? '—' : num(v, 6))},
    // Points are drawn where the data are sparse (uPlot's default), lines always.
    {label, stroke: color, width: 1.5, spanGaps: true,
      value: (u, v) => (v === null ? '—' : log ? sci(v, 3) : num(v, 6))},
  ];
  for (const l of lines) {
    series.push({label: l.label, stroke: l.color || '#dc2626', width: 1, dash: [6, 4], points: {show: false},
      value: () => (log ? sci(l.value, 2) : num(l.value))});
  }
  const opts = {
    title, width: Math.max(200, el.clientWidth), height,
    scales: {x: {time: false}, y: log ? {distr: 3, log: 10, range: (u, lo, hi) => (range ? [range.min, range.max] : [lo, hi])} : {}},
    axes: [
      {label: xLabel, labelSize: 20, ...(xInt ? {incrs: INT_INCRS} : {})},
      log ? {size: 64, values: logTicks, splits: logSplits} : {size: 64},
    ],
    series,
    cursor: {drag: {x: true, y: false}},
    legend: {live: true},
    hooks: {
      draw: [(u) => {
        drawMarks(u, marks);
        if (!range) return;
        const off = lines.filter((l, i) => !range.drawn[i]);
        if (off.length) {
          drawNote(u, off.map((l) => `${l.label} ${sci(l.value, 1)} is ${l.value > range.max ? 'above' : 'below'} the axis`).join('; '),
            off[0].color || '#dc2626');
        }
      }],
    },
  };
  const u = new U(opts, [[], [], ...lines.map(() => [])], el);
  const stop = autosize(u, el, height);
  el.dataset.points = '0';
  el.dataset.log = log ? '1' : '0';
  el.dataset.marks = '0';
  return {
    u,
    set(xs, ys) {
      const y = log ? ys.map((v) => (v > 0 ? v : null)) : ys;
      if (log) {
        range = logRange(y, lines.map((l) => l.value));
        markRange(el, range);
        if (lines.length) el.dataset.refs = range && range.drawn.every(Boolean) ? 'drawn' : range ? 'off' : '';
      }
      u.setData([xs, y, ...lines.map((l, i) => xs.map(() => (!range || range.drawn[i] ? l.value : null)))]);
      el.dataset.points = String(xs.length);
    },
    setMarks(ms) {
      const sig = JSON.stringify(ms);
      if (sig === el.dataset.markSig) return;
      el.dataset.markSig = sig;
      marks = ms;
      el.dataset.marks = String(ms.length);
      el.dataset.markLabels = ms.map((m) => m.label).join(',');
      u.redraw(false, false);
    },
    destroy() { stop(); u.destroy(); },
  };
}

// The union of several runs' x values, each run's y values on it (null where
// a run has none): the one x array that uPlot's series share.
export function joinXs(runs) {
  const all = new Set();
  for (const r of runs) for (const x of r.xs) if (x !== null && Number.isFinite(x)) all.add(x);
  const xs = [...all].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = runs.map((r) => {
    const out = new Array(xs.length).fill(null);
    r.xs.forEach((x, i) => { if (at.has(x) && r.ys[i] !== null && r.ys[i] !== undefined) out[at.get(x)] = r.ys[i]; });
    return out;
  });
  return {xs, ys};
}

// Several runs' curves of one metric on one chart: runs [{label, color, xs, ys,
// pointsOnly}] (pointsOnly: markers without a line, for evaluations).
// A log chart's y axis fits the data (data-ymin/data-ymax as lineChart's).
export function overlayChart(U, el, {title, runs, log = false, xLabel = 'iteration', xInt = true, height = 240}) {
  const {xs, ys} = joinXs(runs.map((r) => ({xs: r.xs, ys: log ? r.ys.map((v) => (v > 0 ? v : null)) : r.ys})));
  const range = log ? logRange(ys.flat()) : null;
  markRange(el, range);
  const opts = {
    title, width: Math.max(200, el.clientWidth), height,
    scales: {x: {time: false}, y: log ? {distr: 3, log: 10, range: (u, lo, hi) => (range ? [range.min, range.max] : [lo, hi])} : {}},
    axes: [
      {label: xLabel, labelSize: 20, ...(xInt ? {incrs: INT_INCRS} : {})},
      log ? {size: 64, values: logTicks, splits: logSplits} : {size: 64},
    ],
    series: [{label: xLabel, value: (u, v) => (v === null ? '—' : num(v, 6))},
      ...runs.map((r) => ({label: r.label, stroke: r.color, width: 1.5, spanGaps: true,
        ...(r.pointsOnly ? {paths: () => null, points: {show: true, size: 8, fill: r.color}} : {}),
        value: (u, v) => (v === null ? '—' : log ? sci(v, 3) : num(v, 6))}))],
    cursor: {drag: {x: true, y: false}},
    legend: {live: true},
  };
  const u = new U(opts, [xs, ...ys], el);
  const stop = autosize(u, el, height);
  el.dataset.series = String(runs.length);
  el.dataset.points = String(ys.reduce((a, y) => a + y.filter((v) => v !== null).length, 0));
  el.dataset.log = log ? '1' : '0';
  return {u, destroy() { stop(); u.destroy(); }};
}

// Quantities of a sweep's points against λ on a log x axis, joined in λ order:
// xs (sorted), series [{label, ys, color, scale, side, fmt}]; each scale gets
// its own axis (the first on the left, the others on the right).
export function lambdaPathChart(U, el, {xs, series, xLabel = 'λ', height = 320}) {
  const xr = logRange(xs);
  const scales = {x: {time: false, distr: 3, log: 10, range: () => (xr ? [xr.min, xr.max] : [1e-3, 1])}};
  const axes = [{label: xLabel, labelSize: 20, values: logTicks, splits: logSplits}];
  for (const [i, s] of series.entries()) {
    if (scales[s.scale]) continue;
    scales[s.scale] = {range: (u, lo, hi) => pad(lo, hi)};
    axes.push({scale: s.scale, label: s.label, labelSize: 20, size: 56, side: i === 0 ? 3 : 1, stroke: s.color,
      grid: {show: i === 0}, ...(s.int ? {incrs: INT_INCRS} : {})});
  }
  const opts = {
    width: Math.max(240, el.clientWidth), height, scales, axes,
    series: [{label: xLabel, value: (u, v) => (v === null ? '—' : num(v, 5))},
      ...series.map((s) => ({label: s.label, scale: s.scale, stroke: s.color, width: 2, spanGaps: true,
        points: {show: true, size: 7, fill: s.color}, value: (u, v) => (v === null ? '—' : num(v, 5))}))],
    cursor: {drag: {x: false, y: false}},
    legend: {live: true},
  };
  const u = new U(opts, [xs, ...series.map((s) => s.ys)], el);
  const stop = autosize(u, el, height);
  el.dataset.points = String(xs.length);
  el.dataset.series = series.map((s) => s.key).join(',');
  return {u, destroy() { stop(); u.destroy(); }};
}

// The non-dominated points when both coordinates are to be minimised (or y
// maximised with maximize): indices into pts, sorted by x.
export function paretoFront(pts, maximize = false) {
  const idx = pts.map((p, i) => i).filter((i) => Number.isFinite(pts[i].x) && Number.isFinite(pts[i].y));
  idx.sort((a, b) => pts[a].x - pts[b].x || (maximize ? pts[b].y - pts[a].y : pts[a].y - pts[b].y));
  const front = [];
  let best = maximize ? -Infinity : Infinity;
  for (const i of idx) {
    const y = pts[i].y;
    if (maximize ? y > best : y < best) { front.push(i); best = y; }
  }
  return front;
}

// A scatter of points {x, y, href, title, id} with the Pareto front drawn as
// a step line; every point is also an <a> over the plot, linking to href.
// ref: an optional reference point {x, y, label} (the model before
// compression) drawn as a square with a dashed horizontal line at its y.
export function paretoChart(U, el, {points, xLabel, yLabel, maximize = false, log = false, height = 320, ref = null, xFmt = null}) {
  const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!log || p.y > 0));
  const order = pts.map((p, i) => i).sort((a, b) => pts[a].x - pts[b].x || pts[a].y - pts[b].y);
  const sorted = order.map((i) => pts[i]);
  const front = new Set(paretoFront(sorted, maximize));
  const xs = sorted.map((p) => p.x);
  const ys = sorted.map((p) => p.y);
  const fy = sorted.map((p, i) => (front.has(i) ? p.y : null));
  const links = [];
  const opts = {
    width: Math.max(240, el.clientWidth), height,
    scales: {
      x: {time: false, range: (u, lo, hi) => pad(...withRef(lo, hi, ref?.x))},
      y: log ? {distr: 3, log: 10} : {range: (u, lo, hi) => pad(...withRef(lo, hi, ref?.y))},
    },
    axes: [{label: xLabel, labelSize: 20, incrs: INT_INCRS, ...(xFmt ? {values: (u, vals) => vals.map((v) => (v === null ? '' : xFmt(v)))} : {})}, {label: yLabel, labelSize: 20, size: 64, ...(log ? {values: logTicks, splits: logSplits} : {})}],
    series: [
      {label: xLabel},
      {label: 'points', stroke: COLORS[0], fill: COLORS[0], paths: () => null,
        points: {show: true, size: 9, width: 1, fill: '#93c5fd'}, value: (u, v) => (v === null ? '—' : num(v, 5))},
      {label: 'Pareto front', stroke: COLORS[1], width: 2, spanGaps: true, paths: U.paths.stepped({align: 1}),
        points: {show: true, size: 9, fill: COLORS[1]}, value: (u, v) => (v === null ? '—' : num(v, 5))},
    ],
    cursor: {drag: {x: false, y: false}},
    legend: {live: false},
    hooks: {
      draw: [(u) => {
        if (ref) drawRef(u, ref);
        // Place the links over the points (CSS pixels inside u.over).
        for (let i = 0; i < links.length; i++) {
          const a = links[i];
          const left = u.valToPos(xs[i], 'x');
          const top = u.valToPos(ys[i], 'y');
          a.style.left = left + 'px';
          a.style.top = top + 'px';
          a.hidden = !(left >= 0 && top >= 0 && left <= u.over.clientWidth && top <= u.over.clientHeight);
        }
      }],
    },
  };
  const u = new U(opts, [xs, ys, fy], el);
  sorted.forEach((p, i) => {
    const a = h('a', {class: 'pt' + (front.has(i) ? ' front' : ''), href: p.href, title: p.title,
      'data-run': p.id, 'aria-label': p.title});
    links.push(a);
    u.over.append(a);
  });
  u.redraw(false, false);
  const stop = autosize(u, el, height);
  el.dataset.points = String(sorted.length);
  el.dataset.front = String(front.size);
  el.dataset.y = yLabel;
  if (ref) { el.dataset.refX = String(ref.x); el.dataset.refY = String(ref.y); }
  return {u, front: [...front].map((i) => sorted[i]), destroy() { stop(); u.destroy(); }};
}

function withRef(lo, hi, v) {
  if (!Number.isFinite(v)) return [lo, hi];
  return [lo === null ? v : Math.min(lo, v), hi === null ? v : Math.max(hi, v)];
}

// The reference point of a Pareto chart: a square, a dashed line across at
// its y, and its label.
function drawRef(u, ref) {
  const ctx = u.ctx;
  const px = devicePixelRatio;
  const x = u.valToPos(ref.x, 'x', true), y = u.valToPos(ref.y, 'y', true);
  ctx.save();
  ctx.strokeStyle = '#475569';
  ctx.fillStyle = '#475569';
  ctx.lineWidth = 1.5 * px;
  ctx.setLineDash([6 * px, 4 * px]);
  ctx.beginPath();
  ctx.moveTo(u.bbox.left, y);
  ctx.lineTo(u.bbox.left + u.bbox.width, y);
  ctx.stroke();
  ctx.setLineDash([]);
  const r = 5 * px;
  ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
  ctx.font = `${Math.round(11 * px)}px system-ui, sans-serif`;
  const right = x > u.bbox.left + u.bbox.width * 0.6;
  ctx.textAlign = right ? 'right' : 'left';
  ctx.fillText(ref.label, x + (right ? -9 : 9) * px, y - 7 * px);
  ctx.restore();
}

function pad(lo, hi) {
  if (lo === null || hi === null) return [0, 1];
  if (lo === hi) return [lo - Math.max(1, Math.abs(lo) * 0.1), hi + Math.max(1, Math.abs(hi) * 0.1)];
  const d = (hi - lo) * 0.08;
  return [lo - d, hi + d];
}

// A histogram of integer counts ({value: frequency}) with vertical bound lines
// ({value, label, color}).
export function histogramChart(U, el, {title, hist, bounds = [], xLabel, height = 200}) {
  const keys = Object.keys(hist).map(Number);
  const lo = Math.min(...keys, ...bounds.map((b) => b.value)) - 1;
  const hi = Math.max(...keys, ...bounds.map((b) => b.value)) + 1;
  const xs = [];
  const ys = [];
  for (let v = Math.floor(lo); v <= Math.ceil(hi); v++) {
    xs.push(v);
    ys.push(hist[v] || null);
  }
  const opts = {
    title, width: Math.max(200, el.clientWidth), height,
    scales: {x: {time: false, range: [lo, hi]}, y: {range: (u, a, b) => [0, Math.max(1, b) * 1.15]}},
    axes: [{label: xLabel, labelSize: 20, incrs: INT_INCRS}, {size: 44, incrs: INT_INCRS}],
    series: [{label: xLabel}, {label: 'instances', fill: 'rgba(37,99,235,0.55)', stroke: COLORS[0], width: 1,
      paths: U.paths.bars({size: [0.9, 40], align: 0}), points: {show: false}}],
    legend: {show: false},
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
        for (const b of bounds) {
          const x = Math.round(u.valToPos(b.value, 'x', true));
          ctx.strokeStyle = b.color || '#dc2626';
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash([6 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.fillStyle = b.color || '#dc2626';
          const right = x > u.bbox.left + u.bbox.width * 0.7;
          ctx.textAlign = right ? 'right' : 'left';
          ctx.fillText(b.label, x + (right ? -4 : 4) * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
        }
        ctx.restore();
      }],
    },
  };
  const u = new U(opts, [xs, ys], el);
  const stop = autosize(u, el, height);
  el.dataset.bars = String(keys.length);
  return {u, destroy() { stop(); u.destroy(); }};
}

// Bubbles: groups [{label, color, xs, ys, sizes (0..1)}] drawn as circles on
// fixed ranges; xTicks: optional [[value, label]].
export function bubbleChart(U, el, {groups, xLabel, yLabel, xRange, yRange, xTicks, height = 300}) {
  const opts = {
    width: Math.max(200, el.clientWidth), height,
    scales: {x: {time: false, range: xRange}, y: {range: yRange}},
    axes: [
      {label: xLabel, labelSize: 20, ...(xTicks ? {splits: () => xTicks.map((t) => t[0]), values: () => xTicks.map((t) => t[1])} : {})},
      {label: yLabel, labelSize: 20, size: 50},
    ],
    series: [{label: xLabel}, {label: 'neurons', paths: () => null, points: {show: false}}],
    legend: {show: false},
    cursor: {show: false},
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.beginPath();
        ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
        ctx.clip();
        for (const g of groups) {
          ctx.fillStyle = g.fill || g.color + '66';
          ctx.strokeStyle = g.color;
          ctx.lineWidth = 1.5 * devicePixelRatio;
          g.xs.forEach((x, i) => {
            const r = (3 + 14 * Math.sqrt(Math.max(0, Math.min(1, g.sizes[i])))) * devicePixelRatio;
            ctx.beginPath();
            ctx.arc(u.valToPos(x, 'x', true), u.valToPos(g.ys[i], 'y', true), r, 0, 2 * Math.PI);
            ctx.fill();
            ctx.stroke();
          });
        }
        ctx.restore();
      }],
    },
  };
  const u = new U(opts, [xRange, [null, null]], el);
  const stop = autosize(u, el, height);
  el.dataset.points = String(groups.reduce((n, g) => n + g.xs.length, 0));
  return {u, destroy() { stop(); u.destroy(); }};
}
