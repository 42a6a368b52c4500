// tracking.mjs - browser tests of the dashboard as a tracking tool (issue 16):
// the Sweeps page, the runs table's sorting, search, tags and Compare, the
// Compare view, the λ path and the compress size/accuracy chart of a sweep,
// name, tags and notes edited on the run page, Delete, the solver used, a
// compress run's accuracy per stage and its layer boundaries, and an unknown
// sweep or run.  Imported by test_web.mjs (one TAP stream).

import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {note, step, skip, Daemon, quick, longRun, newPage, shot, pointsAbove, text, waitText} from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEIGHTS = path.join(HERE, '..', 'fixtures', 'fmnist', 'mlp_128_64.safetensors');
const FMNIST = process.env.VV_FASHION_MNIST_DIR || '/usr/share/datasets/fashion-mnist';

// The 784-128-64-10 MLP of the fixtures, compressed on a few Fashion-MNIST images.
const mlp = () => ({arch: 'mlp', input: [1, 28, 28], sizes: [784, 128, 64, 10], weights: 'mlp.safetensors',
  preprocess: {mean: [0.286], std: [0.353]}});
const compressSpec = (extra = {}) => Object.assign({kind: 'compress', model: mlp(), layers: ['fc2', 'fc3'], lambda_ratio: 0.05,
  data: {format: 'fashion-mnist', max_train: 2000, max_test: 500}}, extra);

const rowIds = (page, sel) => page.locator(`${sel} tbody tr[data-id]`).evaluateAll((trs) => trs.map((t) => t.dataset.id));
const waitRows = (page, sel, ids) => page.waitForFunction(([s, want]) => {
  const got = [...document.querySelectorAll(`${s} tbody tr[data-id]`)].map((t) => t.dataset.id).sort();
  return JSON.stringify(got) === JSON.stringify([...want].sort());
}, [sel, ids]);

export async function scenarioTracking(browser) {
  const d = new Daemon();
  try {
    await d.start();
    const haveCompress = fs.existsSync(path.join(FMNIST, 't10k-images-idx3-ubyte.gz')) && fs.existsSync(WEIGHTS);
    if (haveCompress) fs.copyFileSync(WEIGHTS, path.join(d.dir, 'mlp.safetensors'));
    else note(`no Fashion-MNIST at ${FMNIST} or no ${WEIGHTS}: the compress checks are skipped`);

    // Two quick runs that differ in lambda_ratio only, a λ sweep, compress
    // work, then a long sweep that is stopped.
    const r1 = await d.submit(quick(1, 0.1));
    const r2 = await d.submit(quick(1, 0.05));
    const mkSweep = async (body) => {
      const r = await d.req('POST', '/v1/sweeps', body);
      if (r.status !== 201) throw new Error(`POST /v1/sweeps: ${r.status} ${r.text}`);
      return r.json.id;
    };
    const lam = await mkSweep({name: 'lam-path', base: quick(2), grid: {lambda_ratio: [0.3, 0.1, 0.05]}});
    let cmp = null, crun = null;
    if (haveCompress) {
      crun = await d.submit(compressSpec({finetune: {epochs: 1}}));
      cmp = await mkSweep({name: 'cmp-sizes', base: compressSpec({finetune: false, baseline: false}), grid: {lambda_ratio: [0.05, 0.3]}});
    }
    const lamS = await d.until(`/v1/sweeps/${lam}`, (s) => s.state === 'FINISHED', 'the λ sweep finishes');
    for (const id of [r1.id, r2.id]) await d.until(`/v1/runs/${id}`, (r) => r.state === 'FINISHED', `${id} finishes`);
    if (haveCompress) {
      await d.until(`/v1/sweeps/${cmp}`, (s) => s.state === 'FINISHED', 'the compress sweep finishes', 120000);
      await d.until(`/v1/runs/${crun.id}`, (r) => r.state === 'FINISHED', 'the compress run finishes', 120000);
    }
    const longS = await mkSweep({name: 'long-one', base: longRun(), grid: {lambda_ratio: [0.01]}});
    await d.req('POST', `/v1/sweeps/${longS}/stop`);
    await d.until(`/v1/sweeps/${longS}`, (s) => s.state === 'STOPPED' && s.runs.every((r) => !['QUEUED', 'RUNNING'].includes(r.state)),
      'the long sweep stops');
    const allSweeps = [lam, cmp, longS].filter(Boolean);

    const page = await newPage(browser);

    // ---- the Sweeps page
    await page.goto(d.origin + '/#/sweeps');
    await step('Sweeps page: every sweep is listed with its name, kind, state, points, counts and grid', async () => {
      await waitRows(page, '#sweeps-table', allSweeps);
      const cells = await page.locator(`#sweeps-table tr[data-id="${lam}"] td`).allInnerTexts();
      const want = [lam, 'lam-path', 'lasso', 'FINISHED', '3', '3 FINISHED'];
      for (const [i, w] of want.entries()) if (cells[i].trim() !== w) throw new Error(`cell ${i}: ${JSON.stringify(cells)}`);
      if (!/lambda_ratio ∈ \[0\.3, 0\.1, 0\.05\]/.test(cells[6])) throw new Error('grid: ' + cells[6]);
      if (!(await page.locator('nav a.on').innerText()).includes('Sweeps')) throw new Error('the nav does not mark Sweeps');
    });
    await step('Sweeps page: the state filter (FINISHED, then STOPPED) and the search box', async () => {
      await page.selectOption('#sf-state', 'FINISHED');
      await waitRows(page, '#sweeps-table', [lam, cmp].filter(Boolean));
      if (!/state=FINISHED/.test(page.url())) throw new Error('the filter is not in the URL: ' + page.url());
      await page.selectOption('#sf-state', 'STOPPED');
      await waitRows(page, '#sweeps-table', [longS]);
      await page.selectOption('#sf-state', '');
      await page.fill('#sf-q', 'lam-');
      await page.press('#sf-q', 'Enter');
      await waitRows(page, '#sweeps-table', [lam]);
      await page.fill('#sf-q', '');
      await page.press('#sf-q', 'Enter');
      await waitRows(page, '#sweeps-table', allSweeps);
    });
    await shot(page, 'sweeps');
    await step('Sweeps page: "Load more" pages on (page_size=2)', async () => {
      await page.goto(d.origin + '/#/sweeps?page_size=2');
      await page.waitForFunction(() => document.querySelectorAll('#sweeps-table tbody tr[data-id]').length === 2);
      await page.click('#sweeps-more');
      await waitRows(page, '#sweeps-table', allSweeps);
      if (allSweeps.length === 3 && !(await page.locator('#sweeps-more').isHidden())) throw new Error('Load more is still offered');
    });
    await step('Sweeps page: a sweep links to its page', async () => {
      await page.click(`#sweeps-table tr[data-id="${lam}"] a`);
      await page.waitForFunction((id) => location.hash === '#/sweeps/' + id, lam);
      await page.locator('#points-table').waitFor();
    });

    // ---- the λ path and the compress sweep's size/accuracy chart
    await step('Sweep page: the λ path has one point per finished point, with active neurons and mse', async () => {
      await page.waitForFunction(() => Number(document.querySelector('#lambda-path')?.dataset.points) === 3);
      const series = (await page.locator('#lambda-path').getAttribute('data-series')).split(',');
      if (!series.includes('active') || !series.includes('mse')) throw new Error('series ' + series);
      if (lamS.runs.length !== 3) throw new Error('the sweep has ' + lamS.runs.length + ' runs');
      const legend = await text(page, '#lambda-path .u-legend');
      if (!/active neurons/.test(legend) || !/mse/.test(legend)) throw new Error('legend: ' + legend);
    });
    await shot(page, 'sweep-lambda-path');
    if (haveCompress) {
      await page.goto(d.origin + `/#/sweeps/${cmp}`);
      await step('compress sweep: parameters against test accuracy (2 points) with the model before as the reference', async () => {
        await page.waitForFunction(() => Number(document.querySelector('#params-acc')?.dataset.points) === 2);
        const s = (await d.req('GET', `/v1/sweeps/${cmp}`)).json;
        const before = s.runs[0].result.before;
        const refY = Number(await page.locator('#params-acc').getAttribute('data-ref-y'));
        const refX = Number(await page.locator('#params-acc').getAttribute('data-ref-x'));
        if (refY !== before.test_acc || refX !== before.params) throw new Error(`ref ${refX}, ${refY}; before ${before.params}, ${before.test_acc}`);
        await page.waitForFunction(() => Number(document.querySelector('#lambda-path')?.dataset.points) === 2);
        const series = await page.locator('#lambda-path').getAttribute('data-series');
        if (!series.split(',').includes('test_acc')) throw new Error('λ path series ' + series);
        if (!/λ \/ λ_max/.test(await text(page, '#lambda-path'))) throw new Error('the x axis is not the λ ratio');
      });
      await shot(page, 'sweep-compress');
    } else {
      skip('compress sweep: parameters against test accuracy', 'no Fashion-MNIST');
    }

    // ---- unknown sweep and run: the error only
    await page.goto(d.origin + '/#/sweeps/s-999999');
    await step('an unknown sweep shows only its error: no panels, no charts, no tables', async () => {
      await waitText(page, '#sweep-error', /No sweep s-999999/);
      const extra = await page.locator('main section, main table, main .chart, #sweep-meta').count();
      if (extra) throw new Error(`${extra} panels under the error`);
    });
    await shot(page, 'sweep-unknown');
    await page.goto(d.origin + '/#/runs/r-999999');
    await step('an unknown run shows only its error', async () => {
      await waitText(page, 'main .banner.error', /No run r-999999/);
      if (await page.locator('main section, main .chart').count()) throw new Error('panels under the error');
    });

    // ---- the runs table: search, tags, sorting
    await d.req('PATCH', `/v1/runs/${r1.id}`, {name: 'baseline-a', tags: ['cmp-test', 'web']});
    await d.req('PATCH', `/v1/runs/${r2.id}`, {tags: ['cmp-test']});
    await page.goto(d.origin + '/#/runs');
    await step('Runs table: the search box finds a run by its name (q=)', async () => {
      await page.waitForFunction((id) => document.querySelector(`#runs-table tr[data-id="${id}"]`), r1.id);
      let sentQ = false;
      const seen = (req) => { if (/\/v1\/runs\?.*q=baseline/.test(req.url())) sentQ = true; };
      page.on('request', seen);
      await page.fill('#f-q', 'baseline');
      await waitRows(page, '#runs-table', [r1.id]);
      await page.waitForFunction(() => /q=baseline/.test(location.hash));
      await page.waitForFunction((id) => document.querySelector(`#runs-table tr[data-id="${id}"] td.c-name`)?.innerText === 'baseline-a', r1.id);
      page.off('request', seen);
      if (!sentQ) throw new Error('no request with q=');
      await page.fill('#f-q', '');
      await page.press('#f-q', 'Enter');
    });
    await step('Runs table: the tag filter (tag=) keeps the tagged runs; a tag chip sets it', async () => {
      await page.fill('#f-tag', 'cmp-test');
      await page.press('#f-tag', 'Enter');
      await waitRows(page, '#runs-table', [r1.id, r2.id]);
      await page.fill('#f-tag', '');
      await page.press('#f-tag', 'Enter');
      await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-id]').length > 2);
      await page.click(`#runs-table tr[data-id="${r1.id}"] .tag[data-tag="web"]`);
      await waitRows(page, '#runs-table', [r1.id]);
      if ((await page.inputValue('#f-tag')) !== 'web') throw new Error('tag box: ' + (await page.inputValue('#f-tag')));
      await page.fill('#f-tag', 'cmp-test');
      await page.press('#f-tag', 'Enter');
      await waitRows(page, '#runs-table', [r1.id, r2.id]);
    });
    await step('Runs table: a click on a column header sorts (λ ascending, then descending; run id)', async () => {
      await page.fill('#f-tag', '');
      await page.press('#f-tag', 'Enter');
      await page.waitForFunction(() => document.querySelectorAll('#runs-table tbody tr[data-id]').length >= 5);
      const lambdas = () => page.locator('#runs-table tbody td.c-lambda').allInnerTexts();
      const isSorted = (xs, desc) => xs.every((x, i) => i === 0 || (desc ? xs[i - 1] >= x : xs[i - 1] <= x));
      await page.click('#runs-table th[data-key="lambda"]');
      await page.waitForFunction(() => document.querySelector('#runs-table').dataset.sort === 'lambda:asc');
      let v = (await lambdas()).filter((t) => t !== '—').map(Number);
      if (v.length < 5 || !isSorted(v, false)) throw new Error('ascending: ' + v);
      await page.click('#runs-table th[data-key="lambda"]');
      await page.waitForFunction(() => document.querySelector('#runs-table').dataset.sort === 'lambda:desc');
      v = (await lambdas()).filter((t) => t !== '—').map(Number);
      if (!isSorted(v, true)) throw new Error('descending: ' + v);
      if ((await page.locator('#runs-table th[data-key="lambda"]').getAttribute('aria-sort')) !== 'descending') throw new Error('aria-sort');
      await page.click('#runs-table th[data-key="id"]');
      await page.waitForFunction(() => document.querySelector('#runs-table').dataset.sort === 'id:asc');
      const ids = await rowIds(page, '#runs-table');
      if (JSON.stringify(ids) !== JSON.stringify([...ids].sort())) throw new Error('ids: ' + ids);
      if (!/sort=id/.test(page.url())) throw new Error('the sort is not in the URL');
    });
    await shot(page, 'runs-sorted');

    // ---- Compare
    await step('Runs table: pick two runs and press Compare', async () => {
      await page.fill('#f-tag', 'cmp-test');
      await page.press('#f-tag', 'Enter');
      await waitRows(page, '#runs-table', [r1.id, r2.id]);
      if (!(await page.locator('#compare-btn').isDisabled())) throw new Error('Compare is enabled with nothing picked');
      await page.check(`#runs-table tr[data-id="${r1.id}"] input.pick`);
      await page.check(`#runs-table tr[data-id="${r2.id}"] input.pick`);
      await page.waitForFunction(() => !document.querySelector('#compare-btn').disabled);
      await page.click('#compare-btn');
      await page.waitForFunction(() => location.hash.startsWith('#/compare?ids='));
      const ids = new URL(page.url()).hash.split('ids=')[1].split(',').sort();
      if (JSON.stringify(ids) !== JSON.stringify([r1.id, r2.id].sort())) throw new Error('ids ' + ids);
    });
    await step('Compare: one chart per metric with both runs overlaid, and a legend naming each run', async () => {
      for (const k of ['objective', 'rel_gap', 'active', 'mse']) {
        await page.waitForFunction((key) => document.querySelector(`#compare-charts [data-chart="${key}"]`)?.dataset.series === '2', k);
      }
      const legend = await text(page, '#compare-legend');
      if (!legend.includes(`${r1.id} (baseline-a)`) || !legend.includes(r2.id)) throw new Error('legend: ' + legend);
      const chartLegend = await text(page, '#compare-charts [data-chart="objective"] .u-legend');
      if (!chartLegend.includes(r1.id) || !chartLegend.includes(r2.id)) throw new Error('chart legend: ' + chartLegend);
      const m1 = (await d.req('GET', `/v1/runs/${r1.id}/metrics?keys=objective`)).json.count;
      const m2 = (await d.req('GET', `/v1/runs/${r2.id}/metrics?keys=objective`)).json.count;
      const pts = Number(await page.locator('#compare-charts [data-chart="objective"]').getAttribute('data-points'));
      if (pts !== m1 + m2) throw new Error(`${pts} points, the runs have ${m1} + ${m2}`);
    });
    await step('Compare: the x axis toggles to time', async () => {
      await page.click('#cx-time');
      await page.waitForFunction(() => /time \(s\)/.test(document.querySelector('#compare-charts [data-chart="objective"]')?.innerText || ''));
      if (!/x=time/.test(page.url())) throw new Error('x=time is not in the URL');
      await page.click('#cx-step');
      await page.waitForFunction(() => /iteration/.test(document.querySelector('#compare-charts [data-chart="objective"]')?.innerText || ''));
    });
    await step('Compare: the parameters that differ (lambda_ratio) are listed, equal ones (generate.n) only on request', async () => {
      await page.locator('#compare-params').waitFor();
      const keys = () => page.locator('#compare-params tbody tr[data-key]').evaluateAll((trs) => trs.map((t) => t.dataset.key));
      const k = await keys();
      if (JSON.stringify(k) !== '["lambda_ratio"]') throw new Error('rows: ' + k);
      const vals = await page.locator('#compare-params tr[data-key="lambda_ratio"] td').allInnerTexts();
      if (vals.join() !== '0.1,0.05') throw new Error('values: ' + vals);
      await page.check('#show-equal');
      await page.waitForFunction(() => document.querySelector('#compare-params tr[data-key="generate.n"].same'));
      await page.uncheck('#show-equal');
      await page.waitForFunction(() => !document.querySelector('#compare-params tr[data-key="generate.n"]'));
      const sum = await text(page, '#compare-summary');
      if (!/active neurons/.test(sum) || !/FINISHED/.test(sum)) throw new Error('summary: ' + sum.slice(0, 300));
    });
    await shot(page, 'compare');

    // ---- the run page: solver, name, tags, notes, delete
    await page.goto(d.origin + `/#/runs/${r1.id}`);
    await step('Run page: the solver actually used is shown ("auto → bcd" or "auto → fista")', async () => {
      await page.locator('#card-solver').waitFor();
      const t = await text(page, '#card-solver');
      const used = (await d.req('GET', `/v1/runs/${r1.id}`)).json.result.solver_used;
      if (!used || !t.includes(`auto → ${used}`)) throw new Error(`card "${t}", solver_used ${used}`);
      if (!(await text(page, '#run-result')).includes(`auto → ${used}`)) throw new Error('not in the result table');
    });
    await step('Run page: the rel_gap axis of a converged run reaches its tolerance line (within 2 decades)', async () => {
      await waitText(page, '#stream-status', /run ended/);
      const el = page.locator('[data-chart="rel_gap"]');
      await page.waitForFunction(() => document.querySelector('[data-chart="rel_gap"]')?.dataset.refs === 'drawn');
      const [ymin, dmin] = [Number(await el.getAttribute('data-ymin')), Number(await el.getAttribute('data-dmin'))];
      if (!(ymin <= 1e-8 && ymin <= dmin)) throw new Error(`ymin ${ymin}, dmin ${dmin}`);
    });
    await step('Run page: tags added and removed, name and notes saved; the fields show the saved values', async () => {
      await page.waitForFunction(() => document.querySelector('#run-tags')?.dataset.tags === 'cmp-test,web');
      if ((await page.inputValue('#run-name')) !== 'baseline-a') throw new Error('name field: ' + (await page.inputValue('#run-name')));
      await page.fill('#tag-input', 'exp:lr=0.1');
      await page.click('#tag-add');
      await page.waitForFunction(() => document.querySelector('#run-tags').dataset.tags === 'cmp-test,exp:lr=0.1,web');
      await page.click('#run-tags .tag[data-tag="web"] button.x');
      await page.waitForFunction(() => document.querySelector('#run-tags').dataset.tags === 'cmp-test,exp:lr=0.1');
      await page.fill('#run-name', 'renamed run');
      await page.fill('#run-notes', 'λ = 0.1 of λ_max;\nconverged in a few iterations.');
      await page.click('#track-save');
      await waitText(page, '#track-status', /saved/);
      await waitText(page, '#run-title-name', /renamed run/);
    });
    await step('Run page: a bad tag and a refused PATCH show their errors', async () => {
      await page.fill('#tag-input', 'no spaces');
      await page.click('#tag-add');
      await waitText(page, '#track-error', /not a tag/);
      await page.route(`**/v1/runs/${r1.id}`, (route) => (route.request().method() === 'PATCH'
        ? route.fulfill({status: 400, contentType: 'application/problem+json',
          body: JSON.stringify({type: 'about:blank', title: 'Bad Request', status: 400, detail: 'notes: too long', error_code: 'INVALID', field: '/notes'})})
        : route.continue()));
      await page.fill('#run-notes', 'another note');
      await page.click('#track-save');
      await waitText(page, '#track-error', /notes: too long/);
      await page.unroute(`**/v1/runs/${r1.id}`);
      await page.fill('#tag-input', '');
    });
    await step('Run page: after a reload the saved name, tags and notes are shown, as the API has them', async () => {
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#run-tags')?.dataset.tags === 'cmp-test,exp:lr=0.1');
      const r = (await d.req('GET', `/v1/runs/${r1.id}`)).json;
      if (r.name !== 'renamed run' || r.notes !== 'λ = 0.1 of λ_max;\nconverged in a few iterations.' ||
        JSON.stringify(r.tags) !== '["cmp-test","exp:lr=0.1"]') throw new Error('API: ' + JSON.stringify([r.name, r.tags, r.notes]));
      if ((await page.inputValue('#run-name')) !== r.name || (await page.inputValue('#run-notes')) !== r.notes) throw new Error('fields');
    });
    await shot(page, 'run-tracking');
    await page.goto(d.origin + `/#/runs/${r2.id}`);
    await step('Run page: Delete asks first (dismiss keeps the run), then deletes it and returns to the runs list', async () => {
      await page.locator('#delete-btn:not([hidden])').waitFor();
      page.once('dialog', (dlg) => dlg.dismiss());
      await page.click('#delete-btn');
      await page.evaluate(() => 0);
      if ((await d.req('GET', `/v1/runs/${r2.id}`)).status !== 200) throw new Error('deleted after dismissing');
      let asked = '';
      page.once('dialog', (dlg) => { asked = dlg.message(); return dlg.accept(); });
      await page.click('#delete-btn');
      await page.waitForFunction(() => location.hash === '#/runs');
      if (!/^Delete r-/.test(asked)) throw new Error('dialog: ' + asked);
      const g = await d.req('GET', `/v1/runs/${r2.id}`);
      if (g.status !== 404) throw new Error('GET after delete: ' + g.status);
      await page.waitForFunction((id) => document.querySelector('#runs-table tbody tr[data-id]') &&
        !document.querySelector(`#runs-table tr[data-id="${id}"]`), r2.id);
    });

    // ---- a compress run: accuracy per stage, layer boundaries
    if (haveCompress) {
      await page.goto(d.origin + `/#/runs/${crun.id}`);
      await step('compress run: test accuracy per stage as separate bars, not a curve through the lasso\'s iterations', async () => {
        await waitText(page, '#stream-status', /run ended/);
        await page.locator('#stage-acc .bar[data-stage="after"]').waitFor();
        const stages = (await page.locator('#stage-acc').getAttribute('data-stages')).split(',');
        for (const s of ['before', 'pruned', 'refit', 'finetuned', 'after']) if (!stages.includes(s)) throw new Error('stages ' + stages);
        const r = (await d.req('GET', `/v1/runs/${crun.id}`)).json.result;
        const acc = Number(await page.locator('#stage-acc .bar[data-stage="before"]').getAttribute('data-acc'));
        if (acc !== r.before.test_acc) throw new Error(`before ${acc}, result ${r.before.test_acc}`);
        await pointsAbove(page, '[data-chart="objective"]', 10);
        const charts = await page.locator('#charts [data-chart]').evaluateAll((cs) => cs.map((c) => c.dataset.chart));
        if (charts.some((c) => /acc|loss|params|macs/.test(c))) throw new Error('charts: ' + charts);
      });
      await step('compress run: the boundary between its 2 layers is drawn on the charts, labelled with the layer names', async () => {
        const r = (await d.req('GET', `/v1/runs/${crun.id}`)).json.result;
        note('layers: ' + JSON.stringify(r.layers.map((l) => [l.layer, l.first_step, l.last_step, l.solver_used])));
        await page.waitForFunction(() => document.querySelector('[data-chart="objective"]')?.dataset.marks === '2');
        const labels = await page.locator('[data-chart="objective"]').getAttribute('data-mark-labels');
        if (labels !== 'fc2,fc3') throw new Error('labels ' + labels);
        const marks = JSON.parse(await page.locator('[data-chart="objective"]').getAttribute('data-mark-sig'));
        if (isFinite(r.layers[1].first_step) && marks[1].x !== r.layers[1].first_step) throw new Error('marks ' + JSON.stringify(marks));
        await page.waitForFunction(() => document.querySelector('[data-chart="rel_gap"]')?.dataset.marks === '2');
      });
      await shot(page, 'compress-run');
    } else {
      skip('compress run: stage accuracies and layer boundaries', 'no Fashion-MNIST');
    }

    // ---- a run a worker ran elsewhere (vvd run --report-to) names where
    const ext = await d.req('POST', '/v1/runs?external=1', quick(9));
    await d.req('POST', `/v1/runs/${ext.json.id}/claim`, {where: 'node7 pid 42, slurm job 9_0'});
    await d.req('POST', `/v1/runs/${ext.json.id}/finish`, {state: 'FINISHED', stop_reason: 'converged', result: {active: 3}});
    await page.goto(`${d.origin}/#/runs/${ext.json.id}`);
    await step('run page: a run a worker ran says where it ran', async () => {
      await page.waitForSelector('[data-runner]');
      const t = await text(page, '[data-runner]');
      if (!/ran on node7 pid 42, slurm job 9_0/.test(t)) throw new Error('runner: ' + t);
    });
    await page.context().close();
  } finally {
    await d.close();
  }
}
