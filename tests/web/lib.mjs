// lib.mjs - what the dashboard's browser tests share: the command line, TAP
// output, a real `vvd serve --web-dir web` (Daemon), the specs of quick and
// long runs, and page helpers (new pages, screenshots, waits on the DOM).
// Used by test_web.mjs and the scenarios it imports (tracking.mjs).

import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const [VVD_ARG, WEB_DIR, SHOTS = path.join(os.tmpdir(), 'vvd-web-shots')] = process.argv.slice(2);
export const VVD = VVD_ARG && path.resolve(VVD_ARG);
export const CHROMIUM = process.env.VV_CHROMIUM || '/usr/bin/chromium';
export const WAIT_MS = Number(process.env.VV_WEB_WAIT_MS || 30000);

// ---- TAP ---------------------------------------------------------------------------

export const tap = {n: 0, failed: 0};
export function ok(cond, desc, diag) {
  tap.n++;
  desc = String(desc).replace(/\n/g, ' ').replace(/#/g, 'No.');
  console.log(`${cond ? 'ok' : 'not ok'} ${tap.n} - ${desc}`);
  if (!cond) {
    tap.failed++;
    if (diag !== undefined) for (const l of String(diag).split('\n')) console.log('#   ' + l);
  }
  return !!cond;
}
// A test point that is skipped (TAP's SKIP directive), why: the reason.
export function skip(desc, why) {
  tap.n++;
  console.log(`ok ${tap.n} - ${String(desc).replace(/#/g, 'No.')} # SKIP ${why}`);
}
export const note = (s) => { for (const l of String(s).split('\n')) console.log('# ' + l); };

// One test point per step: ok when fn resolves truthy (or undefined), not ok
// with the error otherwise.
export async function step(desc, fn) {
  const t = Date.now();
  try {
    const r = await fn();
    if (Date.now() - t > 3000) note(`(${((Date.now() - t) / 1000).toFixed(1)} s)`);
    return ok(r === undefined || !!r, desc, r === false ? 'the check was false' : undefined);
  } catch (e) {
    return ok(false, desc, (e && e.stack) || String(e));
  }
}

export function skipAll(why) {
  console.log(`1..0 # SKIP ${why}`);
  process.exit(0);
}

// ---- the daemon --------------------------------------------------------------------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Daemon {
  constructor({token, dir, port} = {}) {
    this.token = token;
    this.own = !dir;
    this.dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'vvd-web-'));
    this.port = port || 0;
    this.proc = null;
  }

  async start() {
    const portFile = path.join(this.dir, 'port');
    fs.rmSync(portFile, {force: true});
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dir, '--port-file', portFile,
      '--web-dir', path.resolve(WEB_DIR), '--sse-ping', '0.5'];
    if (this.token) args.push('--token', this.token);
    const log = fs.openSync(path.join(this.dir, 'daemon.log'), 'a');
    this.proc = spawn(VVD, args, {stdio: ['ignore', log, log]});
    fs.closeSync(log);
    this.exited = new Promise((r) => {
      this.proc.on('exit', (code, sig) => r({code, sig}));
      this.proc.on('error', (e) => { this.spawnError = e; r({code: -1, sig: null}); });
    });
    const end = Date.now() + 30000;
    while (Date.now() < end) {
      if (this.spawnError) throw this.spawnError;
      if (this.proc.exitCode !== null) throw new Error(`vvd serve exited with ${this.proc.exitCode}:\n${this.logTail()}`);
      try {
        const t = fs.readFileSync(portFile, 'utf8').trim();
        if (t) { this.port = Number(t); return this; }
      } catch (e) { /* not yet */ }
      await sleep(20); // start-up readiness: the port file, as the python tests do
    }
    throw new Error('vvd serve wrote no port file in 30 s:\n' + this.logTail());
  }

  get origin() { return `http://127.0.0.1:${this.port}`; }

  logTail(nb = 3000) {
    try { return fs.readFileSync(path.join(this.dir, 'daemon.log'), 'utf8').slice(-nb); } catch (e) { return ''; }
  }

  async req(method, p, body, {auth = true, raw = false} = {}) {
    const headers = {};
    if (auth && this.token) headers.Authorization = 'Bearer ' + this.token;
    if (body !== undefined && !(body instanceof Uint8Array)) headers['Content-Type'] = 'application/json';
    const r = await fetch(this.origin + p, {method, headers,
      body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body)});
    if (raw) return r;
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
    return {status: r.status, json, text, type: r.headers.get('content-type') || ''};
  }

  async submit(spec) {
    const r = await this.req('POST', '/v1/runs', spec);
    if (r.status !== 201) throw new Error(`POST /v1/runs: ${r.status} ${r.text}`);
    return r.json;
  }

  // Polls GET path until pred(json) holds (API-side waits only).
  async until(p, pred, what, ms = WAIT_MS) {
    const end = Date.now() + ms;
    let last = null;
    while (Date.now() < end) {
      last = await this.req('GET', p);
      if (last.status === 200 && pred(last.json)) return last.json;
      await sleep(50);
    }
    throw new Error(`${what}: not reached in ${ms} ms; last: ${last && last.text.slice(0, 400)}`);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 20000);
    await this.exited;
    clearTimeout(t);
  }

  async close() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    if (this.own) fs.rmSync(this.dir, {recursive: true, force: true});
  }
}

// ---- specs -------------------------------------------------------------------------

export const quick = (seed = 1, ratio = 0.1) => ({kind: 'lasso', generate: {n: 2000, k: 64, d: 4, seed}, lambda_ratio: ratio, tol: 1e-8});
// A run that cannot converge in the test's time: Adam-prox with a tiny step.
export const longRun = () => ({kind: 'lasso', generate: {n: 20000, k: 256, d: 8, seed: 3}, lambda_ratio: 0.01,
  solver: 'adam_prox', mu: 1e-6, tol: 1e-12, max_iter: 1e9, max_seconds: 120}); // ends when stopped

// The compress result the daemon will produce (the kind is not ready yet).
export const COMPRESS_RUN = {
  id: 'r-999999', kind: 'compress', state: 'FINISHED', stop_reason: 'converged', sweep_id: null,
  created: 1700000000, started: 1700000001, finished: 1700000031, heartbeat: 0, queue_position: 0, waiting_reason: '',
  spec: {kind: 'compress', model: 'vgg-like', layers: ['classifier.3', 'classifier.6'], lambda_ratio: 0.05},
  result: {kind: 'compress', state: 'FINISHED', stop_reason: 'converged',
    layers: [
      {layer: 'classifier.3', neurons: 4096, kept: 612, lambda: 0.02, rel_gap: 8.1e-7, stop_reason: 'converged', iterations: 220},
      {layer: 'classifier.6', neurons: 512, kept: 37, lambda: 0.01, rel_gap: 1e-7, stop_reason: 'converged', iterations: 41},
    ],
    active: 649, rel_gap: 8.1e-7, test_acc: 0.9338, params: 14893258, iterations: 261, seconds: 30,
    before: {train_acc: 0.9981, test_acc: 0.9342, train_loss: 0.0071, test_loss: 0.2874, params: 20040522, macs: 399511552, latency_ms: 3.42},
    after: {train_acc: 0.9975, test_acc: 0.9338, train_loss: 0.0093, test_loss: 0.2911, params: 14893258, macs: 394364288, latency_ms: 2.87}},
  error: null, summary: {}, artifacts: [],
};

// ---- page helpers ------------------------------------------------------------------

export const jsErrors = [];

export async function newPage(browser, {storage} = {}) {
  const ctx = await browser.newContext({viewport: {width: 1280, height: 900}, acceptDownloads: true});
  if (storage) await ctx.addInitScript((s) => { for (const [k, v] of Object.entries(s)) localStorage.setItem(k, v); }, storage);
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => jsErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|ERR_INCOMPLETE_CHUNKED|ERR_EMPTY_RESPONSE|network error/i.test(m.text())) jsErrors.push(`${page.url()}: console: ${m.text()}`); });
  return page;
}

export async function shot(page, name) {
  const file = path.join(SHOTS, name + '.png');
  await page.screenshot({path: file, fullPage: true});
  note(`screenshot ${file}`);
}

// The number of points a chart plots (its data-points attribute), once > after.
export async function pointsAbove(page, sel, after = 0) {
  const hnd = await page.waitForFunction(([s, a]) => {
    const el = document.querySelector(s);
    const v = el ? Number(el.dataset.points) : 0;
    return v > a ? v : false;
  }, [sel, after]);
  return hnd.jsonValue();
}

export const text = (page, sel) => page.locator(sel).first().innerText();
export const waitText = (page, sel, re) => page.waitForFunction(([s, r]) => {
  const el = document.querySelector(s);
  return !!el && new RegExp(r).test(el.innerText);
}, [sel, re.source]);
