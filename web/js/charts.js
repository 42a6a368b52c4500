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

// A line chart of one metric against the step or the time.  lines: constant
// reference lines ({label, value, color}).  set(xs, ys) replaces the data
// (ys with nulls for gaps); the container's data-points attribute holds the
// number of plotted points, for tests and curious users.
export function lineChart(U, el, {title, label, log = false, lines = [], xLabel = 'iteration', xInt = true, color = COLORS[0], height = 210}) {
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
    scales: {x: {time: false}, y: log ? {distr: 3, log: 10} : {}},
    axes: [
      {label: xLabel, labelSize: 20, ...(xInt ? {incrs: INT_INCRS} : {})},
      log ? {size: 64, values: logTicks, splits: logSplits} : {size: 64},
    ],
    series,
    cursor: {drag: {x: true, y: false}},
    legend: {live: true},
  };
  const u = new U(opts, [[], [], ...lines.map(() => [])], el);
  const stop = autosize(u, el, height);
  el.dataset.points = '0';
  el.dataset.log = log ? '1' : '0';
  return {
    u,
    set(xs, ys) {
      const y = log ? ys.map((v) => (v > 0 ? v : null)) : ys;
      u.setData([xs, y, ...lines.map((l) => xs.map(() => l.value))]);
      el.dataset.points = String(xs.length);
    },
    destroy() { stop(); u.destroy(); },
  };
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
export function paretoChart(U, el, {points, xLabel, yLabel, maximize = false, log = false, height = 320}) {
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
      x: {time: false, range: (u, lo, hi) => pad(lo, hi)},
      y: log ? {distr: 3, log: 10} : {range: (u, lo, hi) => pad(lo, hi)},
    },
    axes: [{label: xLabel, labelSize: 20, incrs: INT_INCRS}, {label: yLabel, labelSize: 20, size: 64, ...(log ? {values: logTicks, splits: logSplits} : {})}],
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
  return {u, front: [...front].map((i) => sorted[i]), destroy() { stop(); u.destroy(); }};
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
