#!/usr/bin/env node
// Browser tests of the dashboard (web/): a real `vvd serve --web-dir web` on
// loopback, driven in Debian's headless Chromium by playwright-core.
//
// Usage: node tests/web/test_web.mjs VVD WEB_DIR [SHOTS_DIR]   (speaks TAP)
//
// Nothing waits on a fixed sleep for the page: every wait is a condition on
// the DOM (page.waitForFunction, locator.waitFor) or on the API, with a
// deadline.  Screenshots of every page go to SHOTS_DIR (build/web-shots).
// Skips (1..0 # SKIP) when Chromium, playwright-core or uPlot is not installed
// (deploy/install-deps.sh installs them).  The shared helpers are in lib.mjs,
// the scenarios of the tracking pages (sweeps, compare, tags and notes,
// delete, compress charts) in tracking.mjs.

import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {VVD, WEB_DIR, SHOTS, CHROMIUM, tap, ok, note, step, skipAll, sleep, Daemon, quick, longRun, COMPRESS_RUN,
  jsErrors, newPage, shot, pointsAbove, text, waitText} from './lib.mjs';
import {scenarioTracking} from './tracking.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// ---- prerequisites -----------------------------------------------------------------

if (!VVD || !WEB_DIR) {
  console.error('usage: test_web.mjs VVD WEB_DIR [SHOTS_DIR]');
  process.exit(2);
}
if (!fs.existsSync(CHROMIUM)) skipAll(`no Chromium at ${CHROMIUM} (deploy/install-deps.sh installs Debian's chromium)`);
if (!fs.existsSync(path.join(WEB_DIR, 'node_modules/uplot/dist/uPlot.esm.js')))
  skipAll(`uPlot is not installed in ${WEB_DIR}/node_modules (deploy/install-deps.sh runs npm ci there)`);
let chromium;
try {
  ({chromium} = await import('playwright-core'));
} catch (e) {
  skipAll(`playwright-core is not installed in ${HERE}/node_modules (deploy/install-deps.sh runs npm ci there)`);
}
fs.mkdirSync(SHOTS, {recursive: true});

// ---- scenarios -----------------------------------------------------------------------

async function scenarioOpen(browser) {
  const d = new Daemon();
  let d2 = null; // the same daemon, restarted
  try {
    await d.start();
    await step('GET / serves the dashboard (text/html) and uPlot from web/node_modules (text/javascript)', async () => {
      const a = await d.req('GET', '/');
      const b = await d.req('GET', '/node_modules/uplot/dist/uPlot.esm.js');
      const c = await d.req('GET', '/js/app.js');
      if (!(a.status === 200 && a.type.startsWith('text/html') && a.text.includes('js/app.js')))
        throw new Error(`/: ${a.status} ${a.type}`);
      if (!(b.status === 200 && b.type.startsWith('text/javascript'))) throw new Error(`uPlot: ${b.status} ${b.type}`);
      if (!(c.status === 200 && c.type.startsWith('text/javascript'))) throw new Error(`app.js: ${c.status} ${c.type}`);
    });

    // Runs: a quick one, a finished sweep of 3 points, then a long one.
    const r1 = await d.submit(quick(1, 0.1));
    const sw = await d.req('POST', '/v1/sweeps', {name: 'web-sweep', base: quick(2), grid: {lambda_ratio: [0.3, 0.1, 0.05]}});
    if (sw.status !== 201) throw new Error(`POST /v1/sweeps: ${sw.status} ${sw.text}`);
    const sid = sw.json.id;
    const sweep = await d.until(`/v1/sweeps/${sid}`, (s) => s.state === 'FINISHED', 'the sweep finishes');
    await d.until(`/v1/runs/${r1.id}`, (r) => r.state === 'FINISHED', 'the quick run finishes');
    const sweepRuns = sweep.runs.filter((r) => r.latest !== false).map((r) => r.id).sort();
    const long = await d.submit(longRun());
    await d.until(`/v1/runs/${long.id}`, (r) => r.state === 'RUNNING', 'the long run starts');

    const page = await newPage(browser);

    // ---- the Runs page
    await page.goto(d.origin + '/#/runs');
    await step('Runs page: every run is listed with its state, the long run RUNNING', async () => {
      await page.waitForFunction((id) => document.querySelector(`#runs-table tr[data-id="${id}"][data-state="RUNNING"]`), long.id);
      await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-id]').length === 5);
      const cells = await page.locator(`#runs-table tr[data-id="${r1.id}"] td`).allInnerTexts();
      if (!cells.includes('lasso') || !cells.includes('FINISHED') || !cells.includes('converged') || !cells.includes('10'))
        throw new Error('row of the quick run: ' + JSON.stringify(cells));
    });
    await step('Runs page: filter by state (FINISHED: 4 rows) and by sweep (its 3 runs)', async () => {
      await page.selectOption('#f-state', 'FINISHED');
      await page.waitForFunction(() => {
        const rows = [...document.querySelectorAll('#runs-table tbody tr[data-id]')];
        return rows.length === 4 && rows.every((r) => r.dataset.state === 'FINISHED');
      });
      if (!/state=FINISHED/.test(page.url())) throw new Error('the filter is not in the URL: ' + page.url());
      await page.selectOption('#f-state', '');
      await page.fill('#f-sweep', sid);
      await page.press('#f-sweep', 'Enter');
      await page.waitForFunction((ids) => {
        const got = [...document.querySelectorAll('#runs-table tbody tr[data-id]')].map((r) => r.dataset.id).sort();
        return JSON.stringify(got) === JSON.stringify(ids);
      }, sweepRuns);
    });
    await step('Runs page: Export CSV downloads the rows shown (header + 3 sweep runs)', async () => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
      const csv = fs.readFileSync(await dl.path(), 'utf8').trim().split(/\r?\n/);
      if (dl.suggestedFilename() !== 'vvd-runs.csv') throw new Error('file name ' + dl.suggestedFilename());
      if (!csv[0].startsWith('id,kind,state,lambda,mu,active')) throw new Error('header: ' + csv[0]);
      const ids = csv.slice(1).map((l) => l.split(',')[0]).sort();
      if (JSON.stringify(ids) !== JSON.stringify(sweepRuns)) throw new Error('rows: ' + csv.join(' | '));
    });
    await page.fill('#f-sweep', '');
    await page.press('#f-sweep', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-id]').length === 5);
    await shot(page, 'runs');

    // ---- the Run page, live
    await page.goto(d.origin + `/#/runs/${long.id}`);
    let n0 = 0;
    await step('Run page: the objective chart gains points while the run streams', async () => {
      n0 = await pointsAbove(page, '[data-chart="objective"]', 0);
      const n1 = await pointsAbove(page, '[data-chart="objective"]', n0);
      note(`objective chart: ${n0} points, then ${n1}`);
    });
    await step('Run page: rel_gap (log scale, with the tol line), active neurons and mse charts are drawn', async () => {
      for (const k of ['rel_gap', 'active', 'mse']) await pointsAbove(page, `[data-chart="${k}"]`, 0);
      const legend = await text(page, '[data-chart="rel_gap"] .u-legend');
      if (!/tol/.test(legend) || !/1e-12/.test(legend)) throw new Error('rel_gap legend: ' + legend);
      if ((await page.locator('[data-chart="rel_gap"]').getAttribute('data-log')) !== '1') throw new Error('rel_gap is not on a log scale');
      if ((await page.locator('[data-chart="objective"]').getAttribute('data-log')) !== '0') throw new Error('objective is on a log scale');
    });
    await step('Run page: the rel_gap axis fits the curve (far above tol 1e-12): its y range spans the data, the tol line is noted, not drawn', async () => {
      const el = page.locator('[data-chart="rel_gap"]');
      await page.waitForFunction(() => document.querySelector('[data-chart="rel_gap"]')?.dataset.refs === 'off');
      const [ymin, ymax, dmin, dmax] = await Promise.all(['data-ymin', 'data-ymax', 'data-dmin', 'data-dmax'].map(async (a) => Number(await el.getAttribute(a))));
      note(`rel_gap data [${dmin}, ${dmax}], axis [${ymin}, ${ymax}]`);
      if (!(ymin <= dmin && dmax <= ymax)) throw new Error('the axis does not hold the data');
      if (!(ymin >= dmin / 10 && ymax <= dmax * 10)) throw new Error('the axis is more than a decade wider than the data');
    });
    await step('Run page: the x axis toggles to time and back', async () => {
      await page.click('#x-time');
      await page.waitForFunction(() => /time \(s\)/.test(document.querySelector('[data-chart="objective"]')?.innerText || ''));
      await pointsAbove(page, '[data-chart="objective"]', 0);
      await page.click('#x-step');
      await page.waitForFunction(() => /iteration/.test(document.querySelector('[data-chart="objective"]')?.innerText || ''));
    });
    await waitText(page, '#run-state', /RUNNING/);
    await shot(page, 'run-live');
    await step('Run page: Stop asks for confirmation; dismissing it keeps the run RUNNING (no request sent)', async () => {
      let stops = 0;
      const count = (req) => { if (req.url().endsWith(`/v1/runs/${long.id}/stop`)) stops++; };
      page.on('request', count);
      let asked = '';
      page.once('dialog', (dlg) => { asked = dlg.type() + ': ' + dlg.message(); return dlg.dismiss(); });
      await page.click('#stop-btn');
      await page.evaluate(() => 0); // the click handler has run to its end
      page.off('request', count);
      if (!/^confirm: Stop r-/.test(asked)) throw new Error('dialog: ' + asked);
      if (stops) throw new Error(`${stops} stop request(s) after dismissing`);
      const r = await d.req('GET', `/v1/runs/${long.id}`);
      if (r.json.state !== 'RUNNING') throw new Error('state ' + r.json.state);
      if (await page.locator('#stop-btn').isDisabled()) throw new Error('the Stop button is disabled');
    });
    await step('Run page: Stop ends the run: the state becomes STOPPED (user), V.npy is offered, and the reply to Stop (RUNNING, taken before the run stopped) arriving after the stream said STOPPED does not undo it', async () => {
      // The reply to Stop is held back until the stream has said STOPPED, so
      // the race a slow reply makes happens every time.
      let release;
      const released = new Promise((res) => { release = res; });
      let replyState = null;
      await page.route(`**/v1/runs/${long.id}/stop`, async (route) => {
        const resp = await route.fetch();
        replyState = (await resp.json()).state;
        await released;
        await route.fulfill({response: resp});
      });
      page.once('dialog', (dlg) => dlg.accept());
      await page.click('#stop-btn');
      await waitText(page, '#run-state', /STOPPED/);
      await waitText(page, '#run-reason', /user/);
      // The final run (its artifacts) is read when the stream ends; only then
      // does the stale reply arrive.
      await page.locator('#run-artifacts a.artifact', {hasText: 'V.npy'}).waitFor();
      release();
      await page.waitForSelector('#stop-btn[data-reply]', {state: 'attached'});
      await page.unroute(`**/v1/runs/${long.id}/stop`);
      note(`the held reply to Stop said ${replyState}`);
      if (!(await text(page, '#run-state')).includes('STOPPED')) throw new Error('the late reply moved the state back to ' + (await text(page, '#run-state')));
      const r = await d.req('GET', `/v1/runs/${long.id}`);
      if (r.json.state !== 'STOPPED' || r.json.stop_reason !== 'user') throw new Error('API: ' + r.text.slice(0, 300));
      if (!(await page.locator('#stop-btn').isHidden())) throw new Error('the Stop button is still shown');
    });
    await shot(page, 'run-stopped');

    // ---- a finished run: the whole history
    await page.goto(d.origin + `/#/runs/${r1.id}`);
    await step('Run page of a finished run: every stored step is plotted, and the certificate shown', async () => {
      const m = await d.req('GET', `/v1/runs/${r1.id}/metrics?keys=objective`);
      const steps = new Set(m.json.metrics.map((p) => p.step)).size;
      await page.waitForFunction(([s]) => Number(document.querySelector('[data-chart="objective"]')?.dataset.points) === s, [steps]);
      await waitText(page, '#stream-status', /run ended/);
      const cards = await text(page, '#run-cards');
      if (!/rel_gap/.test(cards) || !/tol 1e-8/.test(cards)) throw new Error('cards: ' + cards);
      const res = await text(page, '#run-result');
      if (!/converged/.test(res)) throw new Error('result: ' + res);
    });

    // ---- the Sweep page
    await page.goto(d.origin + `/#/sweeps/${sid}`);
    await step('Sweep page: the Pareto plot has one point per sweep point, each a link to its run', async () => {
      await page.waitForFunction((k) => Number(document.querySelector('#pareto')?.dataset.points) === k, sweepRuns.length);
      const hrefs = (await page.locator('#pareto a.pt').evaluateAll((as) => as.map((a) => a.getAttribute('href')))).sort();
      const want = sweepRuns.map((id) => `#/runs/${id}`);
      if (JSON.stringify(hrefs) !== JSON.stringify(want)) throw new Error(`links ${hrefs} want ${want}`);
      const rows = await page.locator('#points-table tbody tr').count();
      if (rows !== sweepRuns.length) throw new Error(`${rows} table rows`);
      if (sweep.points !== undefined && sweep.points !== sweepRuns.length) throw new Error('sweep.points ' + sweep.points);
    });
    await step('Sweep page: the y axis offers mse and objective; the front has at least one point', async () => {
      const opts = await page.locator('#pareto-y option').allInnerTexts();
      if (!opts.includes('mse') || !opts.includes('objective')) throw new Error('y options: ' + opts);
      const front = Number(await page.locator('#pareto').getAttribute('data-front'));
      if (!(front >= 1 && front <= sweepRuns.length)) throw new Error('front ' + front);
      await page.selectOption('#pareto-y', 'objective');
      await page.waitForFunction(() => document.querySelector('#pareto')?.dataset.y === 'objective' &&
        Number(document.querySelector('#pareto').dataset.points) > 0);
      await page.selectOption('#pareto-y', 'mse');
    });
    await shot(page, 'sweep');
    await step('Sweep page: a Pareto point opens its run', async () => {
      const a = page.locator('#pareto a.pt').first();
      const href = await a.getAttribute('href');
      await a.click();
      await page.waitForFunction((h) => location.hash === h, href);
      await waitText(page, '.page-head h1', new RegExp(href.split('/').pop()));
    });

    // ---- a failed run
    await d.req('PUT', '/v1/blobs/garbage.npy', new TextEncoder().encode('garbage'));
    const bad = await d.submit({kind: 'lasso', phi: 'garbage.npy', psi: 'garbage.npy', lambda_ratio: 0.1});
    await d.until(`/v1/runs/${bad.id}`, (r) => r.state === 'FAILED', 'the bad run fails');
    await page.goto(d.origin + `/#/runs/${bad.id}`);
    await step('Run page of a failed run: the error (title, code, field, detail) is shown', async () => {
      await waitText(page, '#run-error', /BAD_FILE_FORMAT/);
      const t = await text(page, '#run-error');
      if (!/FAILED/.test(t) || !/\/phi/.test(t) || !/garbage\.npy/.test(t)) throw new Error(t);
    });
    await shot(page, 'run-failed');

    // ---- experiment kinds
    const fig5 = await d.submit({kind: 'bounds_study', figure: 'fig5', instances: 5});
    const ns = await d.submit({kind: 'neuron_sharing', steps: 20000, log_every: 1000});
    const fr = await d.until(`/v1/runs/${fig5.id}`, (r) => r.state === 'FINISHED', 'bounds_study finishes');
    await page.goto(d.origin + `/#/runs/${fig5.id}`);
    await step('bounds_study: one histogram per panel, with the bound lines in the title text', async () => {
      const panels = fr.result.panels.length;
      await page.waitForFunction((k) => document.querySelectorAll('#bounds-hists .chart[data-bars]').length === k, panels);
      const t = await text(page, '#experiment');
      if (!/K = 7/.test(t) || !/range \[\d+, \d+\]/.test(t)) throw new Error(t.slice(0, 400));
      await waitText(page, '#stream-status', /run ended/);
      await pointsAbove(page, '[data-chart="active"]', 0);
    });
    await shot(page, 'bounds-study');
    const nr = await d.until(`/v1/runs/${ns.id}`, (r) => r.state === 'FINISHED', 'neuron_sharing finishes');
    await page.goto(d.origin + `/#/runs/${ns.id}`);
    await step('neuron_sharing: a neuron scatter per output from weights.safetensors, and the sharing counts', async () => {
      await page.waitForFunction(() => document.querySelector('#neuron-scatter')?.dataset.shared !== undefined);
      const panels = await page.locator('#neuron-scatter .chart[data-output]').count();
      if (panels !== 2) throw new Error(`${panels} panels`);
      const t = await text(page, '#experiment');
      if (!t.includes(`${nr.result.active} of ${nr.result.width}`)) throw new Error(t.slice(0, 400));
      await pointsAbove(page, '[data-chart="vv_norm"]', 0);
      await waitText(page, '#stream-status', /run ended/);
    });
    await shot(page, 'neuron-sharing');

    // ---- compress, from a mocked run (the kind is being written)
    await page.route('**/v1/runs/r-999999', (route) => route.fulfill({status: 200, contentType: 'application/json', body: JSON.stringify(COMPRESS_RUN)}));
    await page.route('**/v1/runs/r-999999/events', (route) => route.fulfill({status: 200, contentType: 'text/event-stream',
      body: 'retry: 2000\n\nid: 1\nevent: state\ndata: {"state":"RUNNING","time":1}\n\n' +
        'id: 2\nevent: metric\ndata: {"event":"metric","step":0,"time":0.1,"objective":1.5,"rel_gap":0.5,"active":4096,"test_acc":0.9342}\n\n' +
        'id: 3\nevent: metric\ndata: {"event":"metric","step":1,"time":0.2,"objective":1.2,"rel_gap":1e-7,"active":649,"test_acc":0.9338}\n\n' +
        'id: 4\nevent: state\ndata: {"state":"FINISHED","stop_reason":"converged","time":2}\n\n'}));
    await page.goto(d.origin + '/#/runs/r-999999');
    await step('compress (mocked result): the layers table and the before/after table', async () => {
      await page.locator('#compress-layers').waitFor();
      const rows = await page.locator('#compress-layers tbody tr').allInnerTexts();
      if (rows.length !== 2 || !/classifier\.6\s+512\s+37\s+7\.2 %/.test(rows[1])) throw new Error(JSON.stringify(rows));
      const foot = await text(page, '#compress-layers tfoot');
      if (!/4608\s+649/.test(foot)) throw new Error('total: ' + foot);
      const acc = await text(page, '#compress-model tr[data-key="test_acc"]');
      if (!/93\.42 %\s+93\.38 %\s+-0\.04 pt/.test(acc)) throw new Error('test_acc row: ' + acc);
      const params = await text(page, '#compress-model tr[data-key="params"]');
      if (!/20\.0M\s+14\.9M\s+×0\.743/.test(params)) throw new Error('params row: ' + params);
      const keys = await page.locator('#compress-model tbody tr').evaluateAll((trs) => trs.map((t) => t.dataset.key));
      if (keys.length !== 7) throw new Error('model rows: ' + keys);
      // Accuracy before and after are separate evaluations: bars, not a chart line.
      await page.locator('#stage-acc .bar[data-stage="after"]').waitFor();
      await pointsAbove(page, '[data-chart="objective"]', 1);
      if (await page.locator('[data-chart="test_acc"]').count()) throw new Error('test_acc is drawn as a curve');
      const accs = await page.locator('#stage-acc .bar').evaluateAll((bs) => bs.map((b) => `${b.dataset.stage}=${b.dataset.acc}`));
      if (accs.join() !== 'before=0.9342,after=0.9338') throw new Error('stage bars: ' + accs);
    });
    await shot(page, 'compress');
    await page.unrouteAll({behavior: 'ignoreErrors'});

    // ---- the daemon goes away and comes back
    await page.goto(d.origin + '/#/runs');
    await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-id]').length >= 5);
    await d.stop();
    await step('daemon stopped: the page says "vvd at <origin> is unreachable"', async () => {
      await page.waitForFunction((o) => {
        const b = document.querySelector('#banner');
        return b && !b.hidden && b.innerText.includes(`vvd at ${o} is unreachable`);
      }, d.origin);
    });
    await shot(page, 'unreachable');
    d2 = new Daemon({dir: d.dir, port: d.port});
    let restarted = false;
    for (let i = 0; i < 50 && !restarted; i++) {
      try { await d2.start(); restarted = true; } catch (e) { await sleep(100); if (i === 49) note(e.message); }
    }
    await step('daemon back on the same port: the banner goes and the table is live again', async () => {
      if (!restarted) throw new Error('could not restart vvd on port ' + d.port);
      await page.waitForFunction(() => document.querySelector('#banner').hidden);
      await waitText(page, '#runs-live', /live/);
      await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-id]').length >= 5);
    });
    await d2.stop();
    await page.context().close();
  } finally {
    await d2?.close();
    await d.close();
  }
}

async function scenarioToken(browser) {
  const TOKEN = 'web-test-token-1';
  const d = new Daemon({token: TOKEN});
  try {
    await d.start();
    const run = await d.submit(quick(5, 0.1));
    await d.until(`/v1/runs/${run.id}`, (r) => r.state === 'FINISHED', 'the run finishes');
    const page = await newPage(browser);

    // A browser cannot send a token when it loads the page itself.
    const stat = await d.req('GET', '/', undefined, {auth: false});
    const api = await d.req('GET', '/v1/runs', undefined, {auth: false});
    ok(stat.status === 200 && api.status === 401,
      'token mode: the dashboard files are served without a token (they hold no data), the API is not',
      `GET / without a token: ${stat.status}, GET /v1/runs without a token: ${api.status}`);

    await page.goto(d.origin + '/#/runs');
    await step('token mode, no token: a clear prompt for the token (401)', async () => {
      await page.waitForFunction(() => {
        const b = document.querySelector('#banner');
        return b && !b.hidden && /requires a bearer token/.test(b.innerText);
      });
      if (!(await page.locator('#token-form.attention').count())) throw new Error('the token field is not highlighted');
      if (await page.locator('#runs-table tbody tr[data-id]').count()) throw new Error('rows shown without a token');
    });
    await shot(page, 'token-needed');
    await step('token mode, wrong token: "The token was refused"', async () => {
      await page.fill('#token', 'wrong-token');
      await page.click('#token-save');
      await waitText(page, '#banner', /token was refused/);
    });
    await step('token mode, right token: the runs appear and the token is kept in localStorage', async () => {
      await page.fill('#token', TOKEN);
      await page.click('#token-save');
      await page.waitForFunction((id) => document.querySelector(`#runs-table tr[data-id="${id}"]`), run.id);
      if (!(await page.locator('#banner').isHidden())) throw new Error('the banner is still shown');
      const stored = await page.evaluate(() => localStorage.getItem('vvd.token'));
      if (stored !== TOKEN) throw new Error('localStorage: ' + stored);
    });
    await page.goto(d.origin + `/#/runs/${run.id}`);
    await step('token mode: the run page streams its events through fetch with the token', async () => {
      await pointsAbove(page, '[data-chart="objective"]', 0);
      await waitText(page, '#stream-status', /run ended/);
    });
    await step('token mode: an artifact downloads with the token', async () => {
      const a = page.locator('#run-artifacts a.artifact', {hasText: 'V.npy'});
      const [dl] = await Promise.all([page.waitForEvent('download'), a.click()]);
      const got = fs.readFileSync(await dl.path());
      const want = (await d.req('GET', `/v1/runs/${run.id}`)).json.artifacts.find((x) => x.name === 'V.npy').bytes;
      if (got.length !== want || got.subarray(1, 6).toString() !== 'NUMPY') throw new Error(`${got.length} bytes, want ${want}`);
    });
    await shot(page, 'token-run');
    await step('token mode: after a reload the stored token is used without a prompt', async () => {
      await page.goto(d.origin + '/#/runs');
      await page.reload();
      await page.waitForFunction((id) => document.querySelector(`#runs-table tr[data-id="${id}"]`), run.id);
      if (!(await page.locator('#banner').isHidden())) throw new Error('the banner is shown');
    });
    await page.context().close();
  } finally {
    await d.close();
  }
}

// ---- main --------------------------------------------------------------------------

const t0 = Date.now();
let browser;
try {
  browser = await chromium.launch({executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage']});
} catch (e) {
  ok(false, 'headless Chromium starts', e.message);
  console.log(`1..${tap.n}`);
  process.exit(1);
}
try {
  for (const [name, fn] of [['open', scenarioOpen], ['token', scenarioToken], ['tracking', scenarioTracking]]) {
    try {
      await fn(browser);
    } catch (e) {
      ok(false, `scenario ${name} ran to its end`, (e && e.stack) || String(e));
    }
  }
  ok(jsErrors.length === 0, 'no JavaScript errors on any page', jsErrors.join('\n'));
} finally {
  await browser.close();
}
note(`web tests took ${((Date.now() - t0) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
console.log(`1..${tap.n}`);
process.exit(tap.failed ? 1 : 0);
