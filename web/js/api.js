// api.js - talking to vvd: JSON requests with the bearer token, the connection
// state (reachable, token needed) shown by the banner, and Server-Sent Events
// read through fetch() so that the Authorization header can be sent.

import {saveBlob, sleep} from './util.js';

const TOKEN_KEY = 'vvd.token';

export const conn = {
  online: true,       // false after a request could not reach the daemon
  auth: 'ok',         // 'ok', 'needed' (401 without a token) or 'refused' (401 with one)
  token: localStorage.getItem(TOKEN_KEY) || '',
};

const listeners = new Set();
// fn(conn, what) is called when online, auth or token change ('online', 'auth', 'token').
export function onConn(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function emit(what) { for (const fn of [...listeners]) fn(conn, what); }

export function setToken(t) {
  t = (t || '').trim();
  if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
  conn.token = t;
  conn.auth = 'ok';
  emit('token');
}

function setOnline(v) {
  if (conn.online === v) return;
  conn.online = v;
  emit('online');
  if (!v) watchHealth();
}

function setAuth(v) {
  if (conn.auth === v) return;
  conn.auth = v;
  emit('auth');
}

// While the daemon is unreachable, GET /health every 2 s (it needs no token)
// until it answers; then everything that waits on 'online' resumes.
let watching = false;
async function watchHealth() {
  if (watching) return;
  watching = true;
  try {
    while (!conn.online) {
      await sleep(2000);
      try {
        const r = await fetch('/health', {cache: 'no-store'});
        if (r.status < 500 || r.status === 503) setOnline(true);
      } catch (e) { /* still down */ }
    }
  } finally {
    watching = false;
  }
}

export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message || problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;          // 0: the daemon could not be reached
    this.problem = problem || null; // the application/problem+json body
  }
}

function headers(extra) {
  const hd = Object.assign({}, extra);
  if (conn.token) hd.Authorization = 'Bearer ' + conn.token;
  return hd;
}

// fetch() with the token; keeps conn.online and conn.auth up to date.
// Throws ApiError(0) when the daemon is unreachable, lets AbortError through.
export async function rawFetch(path, opts = {}) {
  let r;
  try {
    r = await fetch(path, Object.assign({cache: 'no-store'}, opts, {headers: headers(opts.headers)}));
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    setOnline(false);
    throw new ApiError(0, null, `vvd at ${location.origin} is unreachable`);
  }
  setOnline(true);
  if (r.status === 401) setAuth(conn.token ? 'refused' : 'needed');
  else if (r.ok) setAuth('ok');
  return r;
}

async function problemOf(r) {
  try { return await r.json(); } catch (e) { return null; }
}

// A JSON request: api('/v1/runs'), api('/v1/runs', {method: 'POST', body: {...}}).
// Resolves to the parsed body; rejects with ApiError (problem+json attached).
export async function api(path, {method = 'GET', body, signal} = {}) {
  const opts = {method, signal, headers: {Accept: 'application/json'}};
  if (body !== undefined) {
    opts.body = typeof body === 'string' ? body : JSON.stringify(body);
    opts.headers['Content-Type'] = 'application/json';
  }
  const r = await rawFetch(path, opts);
  if (!r.ok) throw new ApiError(r.status, await problemOf(r));
  return r.json();
}

// Downloads an artifact (or any URL) with the token and saves it as name.
export async function downloadWithToken(url, name) {
  const r = await rawFetch(url);
  if (!r.ok) throw new ApiError(r.status, await problemOf(r));
  saveBlob(name, await r.blob());
}

// Follows a Server-Sent Events stream: onEvent({id, event, data}) for each
// event (data parsed as JSON when it is JSON).  Reconnects after the server's
// retry: interval with Last-Event-ID when the connection breaks; stops when the
// server ends the stream after done(event) returned true for some event (a
// final state), or when close() is called.  onStatus('live'|'reconnecting'|
// 'ended'|'error', detail) reports the stream's condition.
export function followEvents(path, {onEvent, onStatus = () => {}, done = () => false}) {
  const ctl = new AbortController();
  let lastId = null;
  let retry = 2000;
  let finished = false;

  async function once() {
    const hd = {Accept: 'text/event-stream'};
    if (lastId !== null) hd['Last-Event-ID'] = String(lastId);
    const r = await rawFetch(path, {headers: hd, signal: ctl.signal});
    if (!r.ok) {
      const p = await problemOf(r);
      throw new ApiError(r.status, p);
    }
    onStatus('live');
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let ev = {data: []};
    for (;;) {
      const {value, done: eof} = await reader.read();
      if (eof) break;
      buf += dec.decode(value, {stream: true});
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (ev.data.length || ev.event || ev.id !== undefined) dispatch(ev);
          ev = {data: []};
          continue;
        }
        if (line.startsWith(':')) continue; // a ping
        const c = line.indexOf(':');
        const name = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? '' : line.slice(c + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        if (name === 'data') ev.data.push(v);
        else if (name === 'event') ev.event = v;
        else if (name === 'id') ev.id = v;
        else if (name === 'retry' && /^\d+$/.test(v)) retry = Number(v);
      }
    }
  }

  function dispatch(ev) {
    if (ev.id !== undefined && ev.id !== '') lastId = ev.id;
    const raw = ev.data.join('\n');
    let data = raw;
    try { data = JSON.parse(raw); } catch (e) { /* not JSON */ }
    const out = {id: ev.id === undefined ? null : Number(ev.id), event: ev.event || 'message', data};
    if (done(out)) finished = true;
    onEvent(out);
  }

  (async () => {
    while (!ctl.signal.aborted) {
      try {
        await once();
        if (finished) { onStatus('ended'); return; }
        // Ended without a final event (a proxy, a restart): resume.
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e instanceof ApiError && e.status && e.status !== 401 && e.status < 500) {
          onStatus('error', e); // 404 and the like: retrying will not help
          return;
        }
        if (finished) { onStatus('ended'); return; }
      }
      if (ctl.signal.aborted) return;
      onStatus('reconnecting');
      await sleep(retry, ctl.signal);
      // While the token is missing or refused, wait for a new one.
      while (conn.auth !== 'ok' && !ctl.signal.aborted) await sleep(500, ctl.signal);
    }
  })();

  return {close: () => ctl.abort()};
}
