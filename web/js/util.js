// util.js - DOM building, number formatting, CSV and downloads (no dependencies).

// h('div', {class: 'x', onclick: f, dataset: {k: v}}, child, 'text', [more]) -> Element.
// Attributes that are null, undefined or false are left out; children that are
// null, undefined or false are skipped; arrays are flattened.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Replaces the children of el.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

// A number for a table: integers as they are, others with 4 significant digits,
// very small or large ones in scientific notation.  Not a number: an em dash.
export function num(v, digits = 4) {
  if (!isNum(v)) return v === null || v === undefined ? '—' : String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return expo(v, digits);
  return String(Number(v.toPrecision(digits)));
}

// Scientific notation without trailing zeros: 1e-6, 2.5e-3.
function expo(v, digits) {
  return v.toExponential(digits - 1).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

// Always scientific (gaps, tolerances).
export function sci(v, digits = 3) {
  if (!isNum(v)) return '—';
  return v === 0 ? '0' : expo(v, digits);
}

// A duration in seconds: "0.42 s", "12.3 s", "4 min 05 s", "2 h 03 min".
export function dur(s) {
  if (!isNum(s) || s < 0) return '—';
  if (s < 10) return s.toFixed(2) + ' s';
  if (s < 60) return s.toFixed(1) + ' s';
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

// A Unix time (seconds) as local date and time.
export function when(t) {
  if (!isNum(t) || t <= 0) return '—';
  const d = new Date(t * 1000);
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function bytes(n) {
  if (!isNum(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

// Large counts (parameters, MACs) with an SI suffix: 1.23M.
export function si(n) {
  if (!isNum(n)) return '—';
  const a = Math.abs(n);
  for (const [d, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']])
    if (a >= d) return (n / d).toPrecision(3) + s;
  return num(n);
}

// The rows of a CSV file (RFC 4180 quoting) from an array of arrays.
export function csv(rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

// Saves a Blob under a file name through a temporary link.
export function saveBlob(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h('a', {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// [['a.b', 1], ['c', 'x']] from {a: {b: 1}, c: 'x'}; arrays of scalars stay whole.
export function flatten(obj, prefix = '', out = []) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? prefix + '.' + k : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) flatten(v, key, out);
    else out.push([key, v]);
  }
  return out;
}

// A value of a parameter or result table.
export function show(v) {
  if (Array.isArray(v)) return v.length > 12 ? `[${v.slice(0, 12).map(show).join(', ')}, … ${v.length} items]` : `[${v.map(show).join(', ')}]`;
  if (v && typeof v === 'object') return JSON.stringify(v);
  if (isNum(v)) return num(v, 6);
  if (v === null || v === undefined) return '—';
  return String(v);
}

// A two-column key/value table.
export function kvTable(pairs, cls = 'kv') {
  return h('table', {class: cls},
    h('tbody', {}, pairs.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v instanceof Node ? v : show(v))))));
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
  });
}

export const FINAL_STATES = ['FINISHED', 'STOPPED', 'FAILED', 'CRASHED'];
export const STATES = ['QUEUED', 'RUNNING', ...FINAL_STATES];
export const KINDS = ['lasso', 'compress', 'interpolate', 'bounds_study', 'neuron_sharing', 'train'];

export function stateBadge(state) {
  return h('span', {class: 'badge state-' + String(state || '').toLowerCase(), 'data-state': state}, state || '?');
}
