// run.js - the Run page: live metric charts from the run's event stream
// (with layer boundaries for compress runs), parameters, result, Stop and
// Delete (both confirmed), name, tags and notes (track.js), artifacts, the
// error of a failed run, and the views of the experiment kinds (experiments.js).

import {api, conn, downloadWithToken, followEvents, onConn} from './api.js';
import {lineChart, loadUPlot, COLORS} from './charts.js';
import {experimentView, stagePanel} from './experiments.js';
import {solverText} from './compare.js';
import {trackPanel} from './track.js';
import {h, fill, num, sci, dur, when, bytes, flatten, kvTable, stateBadge, isNum, FINAL_STATES} from './util.js';

// The charts of a kind, in order; other numeric keys are charted after them.
const PREFERRED = {
  neuron_sharing: ['mse', 'active', 'vv_norm', 'group_norm'],
  compress: ['objective', 'rel_gap', 'active', 'test_acc'],
  default: ['objective', 'rel_gap', 'active', 'mse'],
};
const LABELS = {objective: 'objective P(V)', rel_gap: 'relative duality gap', active: 'active neurons', mse: 'mse',
  vv_norm: 'VV norm', group_norm: 'group norm Σ‖v_k‖', gap: 'duality gap', lambda: 'λ', test_acc: 'test accuracy',
  train_acc: 'train accuracy', test_loss: 'test loss', train_loss: 'train loss', latency_ms: 'latency (ms)'};
const SKIP = new Set(['event', 'step', 'time']);
// A compress run's evaluations (one per stage) and fine-tuning epochs: shown
// per stage (stagePanel), not as curves through the lasso's iterations.
const COMPRESS_EVALS = new Set(['train_acc', 'test_acc', 'train_loss', 'test_loss', 'params', 'macs', 'latency_ms',
  'loss', 'lr', 'epoch']);
// Metrics drawn on a log scale, by kind.
const LOG = {neuron_sharing: ['mse', 'rel_gap', 'gap'], default: ['rel_gap', 'gap']};
// What a step counts, by kind.
const STEP_NAME = {bounds_study: 'instance', neuron_sharing: 'training step'};
const FLUSH_MS = 200;

export function mount(root, params, id) {
  let run = null;
  let stream = null;
  let xMode = params.get('x') === 'time' ? 'time' : 'step';
  const m = {step: [], time: [], keys: new Map()}; // key -> values (null where absent)
  const charts = new Map(); // key -> chart
  let flushTimer = null;
  let destroyed = false;
  let U = null;
  let expView = null;
  let lastLog = [];

  const title = h('h1', {}, id);
  const badge = h('span', {id: 'run-state'});
  const reason = h('span', {class: 'muted', id: 'run-reason'});
  const stopBtn = h('button', {id: 'stop-btn', class: 'danger', hidden: true, onclick: stop}, 'Stop');
  const deleteBtn = h('button', {id: 'delete-btn', class: 'danger', hidden: true, onclick: del,
    title: 'delete this run, its metrics, events and files'}, 'Delete');
  const nameTag = h('span', {class: 'run-name', id: 'run-title-name'});
  const track = trackPanel(id, (r) => setRun(r));
  const stages = {}; // phase -> the evaluation metric of a compress stage
  const layerStarts = new Map(); // layer -> its first metric step
  const stageBox = h('div', {id: 'stage-box', hidden: true});
  const streamStatus = h('span', {class: 'live', id: 'stream-status'});
  const meta = h('div', {class: 'meta', id: 'run-meta'});
  const errBox = h('div', {id: 'run-error', hidden: true});
  const cards = h('div', {class: 'cards', id: 'run-cards'});
  const xToggle = h('div', {class: 'seg', role: 'group', 'aria-label': 'x axis'},
    h('button', {id: 'x-step', onclick: () => setX('step')}, 'iterations'),
    h('button', {id: 'x-time', onclick: () => setX('time')}, 'time'));
  const chartGrid = h('div', {class: 'charts', id: 'charts'});
  const noMetrics = h('p', {class: 'muted', id: 'no-metrics'}, 'No metrics yet.');
  const expBox = h('section', {id: 'experiment', hidden: true});
  const specBox = h('div', {id: 'run-spec'});
  const resultBox = h('div', {id: 'run-result'});
  const artBox = h('div', {id: 'run-artifacts'});
  const logBox = h('ol', {class: 'log', id: 'run-log'});

  fill(root,
    h('div', {class: 'page-head'}, h('a', {href: '#/runs', class: 'back'}, '← Runs'), title, nameTag, badge, reason, stopBtn, deleteBtn, streamStatus),
    meta, errBox, cards,
    h('section', {}, h('div', {class: 'section-head'}, h('h2', {}, 'Convergence'), xToggle), noMetrics, chartGrid, stageBox),
    expBox,
    h('div', {class: 'two'},
      h('section', {}, h('h2', {}, 'Parameters'), specBox),
      h('section', {}, h('h2', {}, 'Result'), resultBox)),
    track.el,
    h('section', {}, h('h2', {}, 'Artifacts'), artBox),
    h('section', {}, h('h2', {}, 'Log'), logBox));
  markX();

  function markX() {
    xToggle.querySelector('#x-step').classList.toggle('on', xMode === 'step');
    xToggle.querySelector('#x-time').classList.toggle('on', xMode === 'time');
  }

  function setX(mode) {
    if (mode === xMode) return;
    xMode = mode;
    markX();
    const q = new URLSearchParams(params);
    if (mode === 'time') q.set('x', 'time'); else q.delete('x');
    history.replaceState(null, '', `#/runs/${id}` + (q.toString() ? '?' + q : ''));
    for (const c of charts.values()) c.destroy();
    charts.clear();
    fill(chartGrid);
    flush();
  }

  async function stop() {
    if (!window.confirm(`Stop ${id}? The run ends now (STOPPED); its iterate so far is kept.`)) return;
    stopBtn.disabled = true;
    stopBtn.textContent = 'Stopping…';
    try {
      const r = await api(`/v1/runs/${id}/stop`, {method: 'POST'});
      stopBtn.dataset.reply = r.state; // the state the server reported when it took the request
      setRun(r);
    } catch (e) {
      stopBtn.disabled = false;
      stopBtn.textContent = 'Stop';
      alertBox(`Stop failed: ${e.message}`);
    }
  }

  async function del() {
    if (!window.confirm(`Delete ${id}? Its metrics, events, artifacts and files are removed; this cannot be undone.`)) return;
    deleteBtn.disabled = true;
    try {
      await api(`/v1/runs/${encodeURIComponent(id)}`, {method: 'DELETE'});
      location.hash = '#/runs';
    } catch (e) {
      deleteBtn.disabled = false;
      alertBox(`Delete failed: ${e.message}`);
    }
  }

  function alertBox(text) {
    errBox.hidden = false;
    fill(errBox, h('div', {class: 'banner error'}, text));
  }

  // A run's state only moves forward (QUEUED, RUNNING, then final), but the
  // snapshots that report it race: the reply to Stop is taken before the run
  // has stopped and may arrive after the stream said STOPPED. An older
  // state never replaces a newer one.
  const stateRank = (s) => (s === 'QUEUED' ? 0 : s === 'RUNNING' ? 1 : 2);
  let shownState = null;

  function setState(state, stopReason) {
    if (shownState !== null && stateRank(state) < stateRank(shownState)) return;
    shownState = state;
    fill(badge, stateBadge(state));
    reason.textContent = stopReason ? `(${stopReason})` : '';
    const live = state === 'QUEUED' || state === 'RUNNING';
    stopBtn.hidden = !live;
    deleteBtn.hidden = live;
    if (!live) stopBtn.disabled = true;
    else if (stopBtn.textContent !== 'Stopping…') stopBtn.disabled = false;
  }

  function setRun(r) {
    if (shownState !== null && stateRank(r.state) < stateRank(shownState)) return;
    run = r;
    setState(r.state, r.stop_reason);
    nameTag.textContent = r.name ? r.name : '';
    track.update(r);
    for (const l of Array.isArray(r.result?.layers) ? r.result.layers : []) {
      if (l.layer && isNum(l.first_step)) layerStarts.set(l.layer, l.first_step);
    }
    if (r.kind === 'compress' && r.result) for (const [k, v] of Object.entries(r.result.stages || {})) stages[k] = v;
    fill(meta,
      h('span', {}, 'kind ', h('b', {}, r.kind)),
      r.sweep_id ? h('span', {}, 'sweep ', h('a', {href: '#/sweeps/' + r.sweep_id}, r.sweep_id), r.attempt > 1 ? ` (attempt ${r.attempt})` : '') : null,
      h('span', {}, 'created ', when(r.created)),
      r.started > 0 ? h('span', {}, 'started ', when(r.started)) : null,
      r.finished > 0 ? h('span', {}, 'took ', dur(r.finished - r.started)) : null,
      r.runner && r.runner !== 'external' ? h('span', {'data-runner': r.runner}, 'ran on ', h('b', {}, r.runner)) : null,
      r.state === 'QUEUED' && r.waiting_reason ? h('span', {}, r.runner ? r.waiting_reason : `queue position ${r.queue_position}: ${r.waiting_reason}`) : null);
    if (r.error) {
      errBox.hidden = false;
      const e = r.error;
      fill(errBox, h('div', {class: 'banner error', role: 'alert'},
        h('b', {}, `${r.state}: ${e.title || 'error'}`), e.error_code ? h('code', {}, e.error_code) : null,
        e.field ? h('span', {}, ' at ', h('code', {}, e.field)) : null,
        h('div', {class: 'detail'}, e.detail || (typeof e === 'string' ? e : JSON.stringify(e)))));
    } else if (r.state === 'CRASHED') {
      errBox.hidden = false;
      fill(errBox, h('div', {class: 'banner error', role: 'alert'}, 'CRASHED: the daemon stopped while this run was running.'));
    } else {
      errBox.hidden = true;
    }
    fill(specBox, kvTable(flatten(r.spec)));
    if (r.result && typeof r.result === 'object') {
      const pairs = [['solver', solverText(r)], ...flatten(r.result).filter(([k]) => k !== 'event' && k !== 'solver' && k !== 'solver_used' && !k.startsWith('outputs.') &&
        !(r.kind === 'bounds_study' && k.startsWith('panels')) && !(r.kind === 'compress' && /^(layers|before|after|stages|baseline)\b/.test(k)))];
      fill(resultBox, kvTable(pairs));
    } else {
      fill(resultBox, h('p', {class: 'muted'}, FINAL_STATES.includes(r.state) ? 'No result.' : 'Not finished yet.'));
    }
    renderCards();
    renderArtifacts();
    renderExperiment();
    renderStages();
    flush();
  }

  // A compress run's accuracy per stage (before, pruned, refit, fine-tuned,
  // after, the magnitude baseline): bars, live from the stage evaluations.
  function renderStages() {
    if (run?.kind !== 'compress') return;
    const res = run.result || {};
    const all = Object.assign({}, stages);
    if (res.before && !all.before) all.before = res.before;
    if (res.after) all.after = res.after;
    const base = res.baseline || {};
    stageBox.hidden = !Object.keys(all).length;
    fill(stageBox, stagePanel(all, base));
  }

  function renderArtifacts() {
    const arts = run?.artifacts || [];
    if (!arts.length) return fill(artBox, h('p', {class: 'muted'}, FINAL_STATES.includes(run?.state) ? 'None.' : 'None yet.'));
    fill(artBox, h('ul', {class: 'artifacts'}, arts.map((a) => h('li', {},
      h('a', {href: a.url, download: a.name, class: 'artifact', onclick: (ev) => {
        if (!conn.token) return; // a plain link works without a token
        ev.preventDefault();
        downloadWithToken(a.url, a.name).catch((e) => alertBox(`Download of ${a.name} failed: ${e.message}`));
      }}, a.name), h('span', {class: 'muted'}, ' ' + bytes(a.bytes))))));
  }

  function renderCards() {
    const s = run?.summary || {};
    const last = {};
    for (const [k, vs] of m.keys) for (let i = vs.length - 1; i >= 0; i--) if (vs[i] !== null) { last[k] = vs[i]; break; }
    const v = (k) => (isNum(last[k]) && !FINAL_STATES.includes(run?.state) ? last[k] : isNum(s[k]) ? s[k] : last[k]);
    const items = [];
    const tol = run?.spec?.tol;
    if (isNum(v('objective'))) items.push(['objective', num(v('objective'), 6)]);
    if (isNum(v('rel_gap'))) items.push(['rel_gap', sci(v('rel_gap')) + (isNum(tol) ? ` (tol ${sci(tol, 1)})` : '')]);
    if (isNum(v('active'))) items.push(['active neurons', num(v('active'))]);
    if (isNum(v('mse'))) items.push(['mse', num(v('mse'), 5)]);
    if (isNum(v('vv_norm'))) items.push(['VV norm', num(v('vv_norm'), 5)]);
    if (run?.kind === 'bounds_study') {
      const n = isNum(run.result?.instances) ? run.result.instances : m.step.length;
      if (n) items.push(['instances solved', num(n)]);
    } else {
      const it = isNum(s.iterations) ? s.iterations : m.step.length ? m.step[m.step.length - 1] : null;
      if (isNum(it)) items.push([run?.kind === 'neuron_sharing' ? 'steps' : 'iterations', num(it)]);
    }
    const secs = isNum(s.seconds) ? s.seconds : m.time.length ? m.time[m.time.length - 1] : null;
    if (isNum(secs)) items.push(['seconds', dur(secs)]);
    if (run && (run.kind === 'lasso' || run.kind === 'compress') && solverText(run) !== '—') items.push(['solver', solverText(run), 'card-solver']);
    fill(cards, items.map(([k, t, cid]) => h('div', {class: 'card', id: cid || null}, h('div', {class: 'k'}, k), h('div', {class: 'v'}, t))));
  }

  async function renderExperiment() {
    if (!run || !run.result || expView?.runState === run.state) return;
    const view = experimentView(run);
    if (!view) return;
    expView?.destroy?.();
    expView = {runState: run.state};
    expBox.hidden = false;
    const U2 = await loadUPlot(expBox);
    if (destroyed) return;
    expView = Object.assign(view(expBox, U2) || {}, {runState: run.state});
  }

  // ---- metrics -----------------------------------------------------------------

  function addMetric(d) {
    if (!isNum(d.step)) return;
    if (typeof d.layer === 'string' && !(layerStarts.get(d.layer) <= d.step)) layerStarts.set(d.layer, d.step);
    if (run?.kind === 'compress' && typeof d.phase === 'string' && isNum(d.test_acc)) {
      stages[d.phase] = d;
      renderStages();
    }
    const n = m.step.length;
    m.step.push(d.step);
    m.time.push(isNum(d.time) ? d.time : null);
    for (const [k, v] of Object.entries(d)) {
      if (SKIP.has(k) || !isNum(v)) continue;
      if (!m.keys.has(k)) m.keys.set(k, new Array(n).fill(null));
    }
    for (const [k, vs] of m.keys) vs.push(isNum(d[k]) ? d[k] : null);
    if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
  }

  function chartKeys() {
    const pref = PREFERRED[run?.kind] || PREFERRED.default;
    const have = [...m.keys.keys()].filter((k) => !(run?.kind === 'compress' && COMPRESS_EVALS.has(k)));
    const keys = pref.filter((k) => m.keys.has(k) && have.includes(k));
    // Kinds without the usual metrics get theirs (up to four), constant ones left out.
    for (const k of have) {
      if (keys.length >= 4) break;
      if (keys.includes(k) || k === 'lambda' || k === 'gap') continue;
      keys.push(k);
    }
    return keys;
  }

  function flush() {
    flushTimer = null;
    if (destroyed || !U) return;
    noMetrics.hidden = m.step.length > 0;
    const xs = xMode === 'time' ? m.time : m.step;
    keysLoop: for (const [i, k] of chartKeys().entries()) {
      let c = charts.get(k);
      const log = (LOG[run?.kind] || LOG.default).includes(k);
      // A log chart waits for a positive value (exact solves report rel_gap 0).
      if (!c && log && !m.keys.get(k).some((v) => v > 0)) continue;
      if (!c) {
        const el = h('div', {class: 'chart', 'data-chart': k});
        chartGrid.append(el);
        const lines = [];
        if (k === 'rel_gap') lines.push({label: 'tol', value: isNum(run?.spec?.tol) ? run.spec.tol : 1e-6, color: '#dc2626'});
        const title = run?.kind === 'bounds_study' && k === 'objective' ? 'objective Σ‖v_k‖ per instance' : LABELS[k] || k;
        c = lineChart(U, el, {title, label: k, log, lines,
          xLabel: xMode === 'time' ? 'time (s)' : STEP_NAME[run?.kind] || 'iteration', xInt: xMode !== 'time', color: COLORS[i % COLORS.length]});
        charts.set(k, c);
      }
      if (xMode === 'time' && xs.some((x) => x === null)) continue keysLoop;
      c.set(xs, m.keys.get(k));
      c.setMarks(layerMarks());
    }
    renderCards();
  }

  // Layer boundaries of a multi-layer compress run: where each layer's solve
  // starts (result.layers[i].first_step, the metrics' "layer", or the "stats"
  // log event's step), in the x units shown.
  function layerMarks() {
    if (layerStarts.size < 2) return [];
    const out = [];
    for (const [layer, step] of [...layerStarts].sort((a, b) => a[1] - b[1])) {
      let x = step;
      if (xMode === 'time') {
        const i = m.step.findIndex((st) => st >= step);
        if (i < 0 || m.time[i] === null) continue;
        x = m.time[i];
      }
      out.push({x, label: layer});
    }
    return out;
  }

  function onEvent(ev) {
    if (ev.event === 'metric' && ev.data && typeof ev.data === 'object') addMetric(ev.data);
    else if (ev.event === 'state' && ev.data?.state) {
      setState(ev.data.state, ev.data.stop_reason);
      // The result and artifacts of a final state are read when the stream
      // ends: the daemon ends it once that state is stored, while a GET at
      // the event itself may still find the run RUNNING.
      if (ev.data.state === 'RUNNING') reload();
    } else if (ev.event === 'log' && ev.data) {
      const d = ev.data;
      if (d.event === 'stats' && typeof d.layer === 'string' && isNum(d.step) && !(layerStarts.get(d.layer) <= d.step)) {
        layerStarts.set(d.layer, d.step);
        if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
      }
      const text = typeof d === 'object' ? Object.entries(d).filter(([k]) => k !== 'event')
        .map(([k, v]) => `${k}=${isNum(v) ? num(v, 5) : typeof v === 'object' ? JSON.stringify(v) : v}`).join('  ') : String(d);
      lastLog.push(h('li', {}, h('b', {}, (typeof d === 'object' && d.event) || 'log'), ' ', text));
      if (lastLog.length > 200) lastLog = lastLog.slice(-200);
      fill(logBox, lastLog);
    }
  }

  async function reload() {
    try {
      const r = await api(`/v1/runs/${id}`);
      if (!destroyed) setRun(r);
    } catch (e) { /* the banner says why */ }
  }

  function follow() {
    stream?.close();
    stream = followEvents(`/v1/runs/${id}/events`, {
      onEvent,
      done: (ev) => ev.event === 'state' && FINAL_STATES.includes(ev.data?.state),
      onStatus: (s, e) => {
        streamStatus.textContent = s === 'live' ? 'live' : s === 'ended' ? 'run ended' : s === 'reconnecting' ? 'reconnecting…' : 'stream error: ' + (e?.message || '');
        streamStatus.className = 'live ' + (s === 'live' ? 'on' : s === 'ended' ? 'done' : 'off');
        if (s === 'ended') {
          flush();
          reload();
        }
      },
    });
  }

  async function start() {
    U = await loadUPlot(chartGrid);
    try {
      setRun(await api(`/v1/runs/${id}`));
    } catch (e) {
      if (e.status === 404) {
        fill(root, h('div', {class: 'page-head'}, h('a', {href: '#/runs', class: 'back'}, '← Runs'), h('h1', {}, id)),
          h('div', {class: 'banner error', role: 'alert'}, `No run ${id}: ${e.message}`));
        return;
      }
      // Unreachable or no token: the banner says so; retry when that changes.
      const off = onConn((c) => { if (c.online && c.auth === 'ok') { off(); if (!destroyed) start(); } });
      cleanups.push(off);
      return;
    }
    if (destroyed) return;
    follow();
  }

  const cleanups = [];
  start();
  return () => {
    destroyed = true;
    stream?.close();
    clearTimeout(flushTimer);
    for (const c of charts.values()) c.destroy();
    expView?.destroy?.();
    for (const f of cleanups) f();
  };
}
